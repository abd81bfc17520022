import { createApp } from '@unicrm/api';
import { createUnicrmCore, type UnicrmCore } from '@unicrm/core';
import { formatContractViolation, type RunningHubSpotSandbox, startHubSpotSandbox } from '@unicrm/sandboxes';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUnicrm, createUnicrmClient, isUnicrmError, type Unicrm } from '../index';
import { runCli } from './cli';

// The SDK on HubSpot accounts (a private app's token, and OAuth tokens that are already expired), on both transports:
// a stage created, moved (displayOrder), archived, listed with and without archived stages, restored; then the CLI.
const TOKEN = 'sdk-hubspot-token';
let sandbox: RunningHubSpotSandbox;
let dir: string;
let core: UnicrmCore;
let server: Server;
let baseUrl: string;
const accounts: Record<string, string> = {};

function oauthContext(seconds: number): Record<string, unknown> {
  const issued = sandbox.issueTokens(seconds);
  return {
    api_base_url: sandbox.url, access_token: issued.access_token, refresh_token: issued.refresh_token, expires_at: issued.expires_at,
    client_id: sandbox.instance.config.clientId, client_secret: sandbox.instance.config.clientSecret,
  };
}

beforeAll(async () => {
  sandbox = await startHubSpotSandbox({ port: 0, contract: true });
  dir = mkdtempSync(join(tmpdir(), 'unicrm-sdk-hubspot-'));
  core = createUnicrmCore({ env: {}, config: { dataDir: dir, apiToken: TOKEN, logLevel: 'silent', rateLimits: { perToken: 0, perAccount: 0, windowMs: 10_000 } } });
  const app = createApp(core);
  server = await new Promise<Server>((resolve) => {
    const s = createServer(app);
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  accounts.token = (await core.accounts.create('default', {
    integration: 'hubspot',
    tenant_id: 'acme',
    context: { api_base_url: sandbox.url, access_token: sandbox.instance.config.accessToken },
  })).id;
  accounts.oauth = (await core.accounts.create('default', { integration: 'hubspot', tenant_id: 'acme', validate: false, context: oauthContext(-60) })).id;
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

describe.each(transports)('the %s SDK on HubSpot', (transport, make) => {
  let sdk: Unicrm;
  beforeAll(() => {
    sdk = make();
  });
  afterAll(() => sdk.close());

  it.each(['token', 'oauth'])('creates a stage, moves it, archives it, lists with and without archived stages, restores it (%s account)', async (mode) => {
    const query = { integrated_account_id: accounts[mode] as string };
    const [sales] = await sdk.crm.pipelines.list(query).all();
    expect(sales).toMatchObject({ id: 'default', name: 'Sales Pipeline', entity: 'opportunity' });
    const name = `${transport} ${mode}`;
    const stage = await sdk.crm.stages.create(query, { name, pipeline: { id: 'default' } });
    expect(stage).toMatchObject({ name, status: 'active', pipeline: { id: 'default', name: 'Sales Pipeline' }, remote_data: { metadata: { probability: '0.5' } } });
    expect(await sdk.crm.stages.update(stage.id, query, { position: 0 })).toMatchObject({ id: stage.id, position: 0 });
    const first: string[] = [];
    for await (const page of sdk.crm.stages.list({ ...query, pipeline: { id: 'default' }, limit: 3 })) first.push(...page.result.map((s) => s.name as string));
    expect(first.indexOf(name)).toBeLessThan(first.indexOf('Qualified To Buy'));
    expect(await sdk.crm.stages.delete(stage.id, query)).toMatchObject({ id: stage.id, status: 'inactive' });
    const active = await sdk.crm.stages.list({ ...query, limit: 100 }).all();
    expect(active.map((s) => s.id)).not.toContain(stage.id);
    const archived = await sdk.crm.stages.list({ ...query, status: 'inactive' }).all();
    expect(archived.map((s) => s.id)).toContain(stage.id);
    expect(await sdk.crm.stages.update(stage.id, query, { status: 'active' })).toMatchObject({ id: stage.id, status: 'active' });
    const refused = await sdk.crm.stages.update(stage.id, query, { pipeline: { id: 'elsewhere' } }).catch((e: unknown) => e);
    expect(isUnicrmError(refused) && refused.statusCode).toBe(400);
  });
});

it('refreshed the expired OAuth tokens once, for both transports', () => {
  expect(sandbox.refreshRequests()).toBe(1);
});

describe('the CLI on HubSpot (remote)', () => {
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

  it('adds HubSpot accounts with --context (a private app, OAuth from a file), then creates, moves, archives and lists stages', async () => {
    const file = join(dir, 'hubspot-oauth.json');
    writeFileSync(file, JSON.stringify(oauthContext(1800)));
    const contexts = [JSON.stringify({ api_base_url: sandbox.url, access_token: sandbox.instance.config.accessToken }), `@${file}`];
    for (const [index, context] of contexts.entries()) {
      const added = await cli(['accounts', 'add', 'hubspot', '--context', context, '--tenant-id', 'cli', '--output', 'json']);
      expect(added).toMatchObject({ code: 0, err: '' });
      const account = JSON.parse(added.out) as { id: string; integration: { name: string } };
      expect(account.integration.name).toBe('hubspot');
      expect(added.out).not.toContain(sandbox.instance.config.accessToken);
      expect((await cli(['pipelines', 'list', '--account', account.id])).out).toContain('Sales Pipeline');
      const label = `CLI stage ${index}`;
      const created = await cli(['stages', 'create', '--account', account.id, '--pipeline', 'default', '--name', label, '--output', 'json']);
      expect(created.code).toBe(0);
      const id = (JSON.parse(created.out) as { id: string }).id;
      expect((await cli(['stages', 'update', id, '--account', account.id, '--position', '2'])).out).toMatch(/position:\s+2/);
      const deleted = await cli(['stages', 'delete', id, '--account', account.id]);
      expect(deleted.out).toContain(`The provider keeps it as inactive: unicrm stages get ${id} --account ${account.id} shows it.`);
      expect((await cli(['stages', 'get', id, '--account', account.id])).out).toMatch(/status:\s+inactive/);
      expect((await cli(['stages', 'list', '--account', account.id, '--all'])).out).not.toContain(label);
      expect((await cli(['stages', 'list', '--account', account.id, '--status', 'inactive'])).out).toContain(label);
      const tickets = await cli(['pipelines', 'list', '--account', account.id, '--remote-query', 'object_type=tickets']);
      expect(tickets.out).toContain('Support Pipeline');
      expect((await cli(['stages', 'delete', id, '--account', account.id])).code).toBe(2);
    }
  });
});
