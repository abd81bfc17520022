import { createApp } from '@unicrm/api';
import { createUnicrmCore, type UnicrmCore } from '@unicrm/core';
import { formatContractViolation, type RunningPipedriveSandbox, startPipedriveSandbox } from '@unicrm/sandboxes';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUnicrm, createUnicrmClient, isUnicrmError, type Unicrm } from '../index';

// The SDK on Pipedrive accounts (one with an API token, one with OAuth tokens that are already expired), on both
// transports: the same methods and shapes as on Pipeliner (sdk.spec.ts is that suite, on the Pipeliner sandbox).
const TOKEN = 'sdk-pipedrive-token';
let sandbox: RunningPipedriveSandbox;
let dir: string;
let core: UnicrmCore;
let server: Server;
let baseUrl: string;
const accounts: Record<string, string> = {};

beforeAll(async () => {
  sandbox = await startPipedriveSandbox({ port: 0, contract: true });
  dir = mkdtempSync(join(tmpdir(), 'unicrm-sdk-pipedrive-'));
  core = createUnicrmCore({ env: {}, config: { dataDir: dir, apiToken: TOKEN, logLevel: 'silent', rateLimits: { perToken: 0, perAccount: 0, windowMs: 10_000 } } });
  const app = createApp(core);
  server = await new Promise<Server>((resolve) => {
    const s = createServer(app);
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  accounts.token = (await core.accounts.create('default', {
    integration: 'pipedrive',
    tenant_id: 'acme',
    context: { api_domain: sandbox.url, api_token: sandbox.instance.config.apiToken },
  })).id;
  const issued = sandbox.issueTokens(-60);
  accounts.oauth = (await core.accounts.create('default', {
    integration: 'pipedrive',
    tenant_id: 'acme',
    validate: false,
    context: {
      api_domain: sandbox.url, access_token: issued.access_token, refresh_token: issued.refresh_token, expires_at: issued.expires_at,
      client_id: sandbox.instance.config.clientId, client_secret: sandbox.instance.config.clientSecret, token_url: sandbox.tokenUrl,
    },
  })).id;
});
afterEach(() => expect(sandbox.takeContractViolations().map(formatContractViolation)).toEqual([]));
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await core.close();
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
});

const transports: [string, () => Unicrm][] = [
  ['embedded', () => createUnicrm({ dataDir: dir })],
  ['remote', () => createUnicrmClient({ baseUrl, token: TOKEN, retry: false })],
];

describe.each(transports)('the %s SDK on Pipedrive', (transport, make) => {
  let sdk: Unicrm;
  beforeAll(() => {
    sdk = make();
  });
  afterAll(() => sdk.close());

  it.each(['token', 'oauth'])('lists pipelines, creates a stage, lists it, renames it and deletes it (%s account)', async (mode) => {
    const query = { integrated_account_id: accounts[mode] as string };
    const [sales] = await sdk.crm.pipelines.list(query).all();
    expect(sales).toMatchObject({ id: '1', name: 'Sales Pipeline', entity: 'opportunity' });
    const name = `${transport} ${mode}`;
    const stage = await sdk.crm.stages.create(query, { name, pipeline: { id: '1' } });
    expect(stage).toMatchObject({ name, status: 'active', pipeline: { id: '1', name: 'Sales Pipeline' } });
    const names: string[] = [];
    for await (const page of sdk.crm.stages.list({ ...query, pipeline: { id: '1' }, limit: 3 })) names.push(...page.result.map((s) => s.name as string));
    expect(names).toContain(name);
    expect(await sdk.crm.stages.update(stage.id, query, { name: `${name} (renamed)` })).toMatchObject({ id: stage.id, name: `${name} (renamed)` });
    expect(await sdk.crm.stages.delete(stage.id, query)).toMatchObject({ id: stage.id, status: 'inactive' });
    const refused = await sdk.crm.stages.update(stage.id, query, { position: 1 }).catch((e: unknown) => e);
    expect(isUnicrmError(refused) && refused.statusCode).toBe(400);
  });
});

it('refreshed the expired OAuth tokens once, for both transports', () => {
  expect(sandbox.refreshRequests()).toBe(1);
});
