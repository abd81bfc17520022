import { createApp } from '@unicrm/api';
import { createUnicrmCore, type UnicrmCore } from '@unicrm/core';
import { formatContractViolation, type RunningPipedriveSandbox, startPipedriveSandbox } from '@unicrm/sandboxes';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUnicrm, createUnicrmClient, isUnicrmError, type Unicrm } from '../index';
import { runCli } from './cli';

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

describe('the CLI on Pipedrive (remote)', () => {
  /** Runs the CLI in this process against the API; its exit code and what it printed. */
  async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await runCli([...args, '--remote', baseUrl], {
      out: (text) => (out += `${text}\n`),
      err: (text) => (err += `${text}\n`),
      env: { UNICRM_API_TOKEN: TOKEN },
    });
    return { code, out, err };
  }

  it('adds accounts of any integration with --context (API token, and OAuth from a file), then runs the stage lifecycle on them', async () => {
    const issued = sandbox.issueTokens(3600);
    const file = join(dir, 'oauth-context.json');
    writeFileSync(
      file,
      JSON.stringify({
        api_domain: sandbox.url, access_token: issued.access_token, refresh_token: issued.refresh_token, expires_at: issued.expires_at,
        client_id: sandbox.instance.config.clientId, client_secret: sandbox.instance.config.clientSecret, token_url: sandbox.tokenUrl,
      }),
    );
    const contexts = [JSON.stringify({ api_domain: sandbox.url, api_token: sandbox.instance.config.apiToken }), `@${file}`];
    for (const context of contexts) {
      const added = await cli(['accounts', 'add', 'pipedrive', '--context', context, '--tenant-id', 'cli', '--output', 'json']);
      expect(added).toMatchObject({ code: 0, err: '' });
      const account = JSON.parse(added.out) as { id: string; integration: { name: string }; context: Record<string, unknown> };
      expect(account.integration.name).toBe('pipedrive');
      // Secrets are never shown back.
      expect(added.out).not.toContain(sandbox.instance.config.apiToken);
      expect(added.out).not.toContain(issued.refresh_token);
      expect((await cli(['pipelines', 'list', '--account', account.id])).out).toContain('Sales Pipeline');
      const created = await cli(['stages', 'create', '--account', account.id, '--pipeline', '1', '--name', 'CLI stage', '--output', 'json']);
      expect(created.code).toBe(0);
      const id = (JSON.parse(created.out) as { id: string }).id;
      expect((await cli(['stages', 'list', '--account', account.id, '--pipeline', '1', '--all'])).out).toContain('CLI stage');
      expect((await cli(['stages', 'update', id, '--account', account.id, '--name', 'CLI stage (renamed)'])).out).toContain('CLI stage (renamed)');
      const deleted = await cli(['stages', 'delete', id, '--account', account.id]);
      expect(deleted.out).toContain(`The provider keeps it as inactive: unicrm stages get ${id} --account ${account.id} shows it.`);
      expect((await cli(['stages', 'get', id, '--account', account.id])).out).toMatch(/status:\s+inactive/);
    }
  });

  it('says what accounts add needs for an integration without flags of its own, and refuses a --context that is not an object', async () => {
    const bare = await cli(['accounts', 'add', 'pipedrive']);
    expect(bare.code).toBe(2);
    expect(bare.err).toContain("accounts add pipedrive takes its context: --context '<json>' or --context @file.json");
    const notObject = await cli(['accounts', 'add', 'pipedrive', '--context', '[1]']);
    expect(notObject.code).toBe(2);
    expect(notObject.err).toContain('--context must be a JSON object');
  });
});
