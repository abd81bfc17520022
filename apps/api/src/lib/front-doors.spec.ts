import { createUnicrmCore, type UnicrmCore } from '@unicrm/core';
import { type RunningSandbox, SANDBOX_SEED_IDS, startSandbox } from '@unicrm/sandboxes';
import { createUnicrm, type Unicrm, UnicrmError } from '@unicrm/sdk';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { createApp, type UnicrmApp } from './app';

const TOKEN = 'front-doors-token';
let sandbox: RunningSandbox;
let core: UnicrmCore;
let sdk: Unicrm;
let app: UnicrmApp;
let dir: string;
let accountId: string;

/** Removes what differs between two creates of the same stage: ids and server times. */
function stable(body: unknown): unknown {
  return JSON.parse(JSON.stringify(body), (key, value) =>
    ['id', 'created', 'modified', 'created_at', 'updated_at'].includes(key) && typeof value === 'string' ? '<varies>' : value,
  );
}

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0, contract: true });
  dir = mkdtempSync(join(tmpdir(), 'unicrm-doors-'));
  core = createUnicrmCore({
    env: {},
    config: { dataDir: dir, apiToken: TOKEN, logLevel: 'silent', rateLimits: { perToken: 0, perAccount: 0, windowMs: 10_000 } },
  });
  app = createApp(core);
  // The SDK opens the same data directory: an account made over HTTP is usable in-process.
  sdk = createUnicrm({ dataDir: dir });
  const account = await request(app)
    .post('/integrated-account')
    .set('authorization', `Bearer ${TOKEN}`)
    .send({
      integration: 'pipeliner',
      tenant_id: 'acme',
      context: { service_url: sandbox.serviceUrl, space_id: sandbox.spaceId, username: sandbox.username, password: sandbox.password },
    });
  accountId = account.body.id;
});

afterEach(() => expect(sandbox.takeContractViolations()).toEqual([]));
afterAll(async () => {
  await sdk.close();
  await core.close();
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the HTTP API and the SDK give the same answer', () => {
  const body = { name: 'Demo', pipeline: { id: SANDBOX_SEED_IDS.salesPipelineId }, remote_data: { percent: 40 } };

  it.each(['unified', 'raw', 'normalized'] as const)('in the %s format', async (format) => {
    sandbox.reset();
    const http = await request(app)
      .post(`/unified/crm/stages?integrated_account_id=${accountId}&truto_response_format=${format}&truto_exclude_fields[]=remote_data.revision`)
      .set('authorization', `Bearer ${TOKEN}`)
      .send(body);
    expect(http.status).toBe(201);
    sandbox.reset();
    const inProcess = await sdk.crm.stages.create(
      { integrated_account_id: accountId, truto_response_format: format, truto_exclude_fields: ['remote_data.revision'] },
      body,
    );
    expect(stable(inProcess)).toEqual(stable(http.body));
  });

  it('and the same error body', async () => {
    const http = await request(app)
      .post(`/unified/crm/stages?integrated_account_id=${accountId}&truto_response_format=xml`)
      .set('authorization', `Bearer ${TOKEN}`)
      .send({});
    const error = await sdk.crm.stages
      .create({ integrated_account_id: accountId, truto_response_format: 'xml' as 'raw' }, {})
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnicrmError);
    expect((error as UnicrmError).statusCode).toBe(http.status);
    expect((error as UnicrmError).body).toEqual(http.body);
  });
});
