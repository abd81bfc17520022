import { type HttpResponse, TOKENS, UnicrmError } from '@unicrm/model';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ENVIRONMENT } from './api-tokens';
import { createUnicrmCore, type UnicrmCore } from './core';
import { FakeTransport } from '../testing/fakes';

const PIPELINE = '11111111-1111-4111-8111-111111111111';
const json = (status: number, body: unknown): HttpResponse => ({ status, headers: {}, bodyText: JSON.stringify(body) });
const created = json(201, {
  success: true,
  data: { id: '22222222-2222-4222-8222-222222222222', name: 'Won', sort_order: 5, is_deleted: false, pipeline_id: PIPELINE, created: '2024-07-09 12:51:48.050073+00:00', modified: '2024-07-09 12:51:48.050073+00:00' },
});
const context = { service_url: 'https://eu-central.api.pipelinersales.com', space_id: 'fr_Myself', username: 'api-token', password: 'api-password' };

let dir: string;
let core: UnicrmCore;
let transport: FakeTransport;
let now: Date;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'unicrm-core-'));
  transport = new FakeTransport();
  now = new Date('2026-06-01T12:00:00.000Z');
  core = createUnicrmCore({
    env: {},
    config: { dataDir: dir, logLevel: 'silent' },
    register: (c) => {
      c.register(TOKENS.HttpTransport, { useValue: transport });
      c.register(TOKENS.Clock, { useValue: { now: () => now } });
    },
  });
});
afterEach(async () => {
  await core.close();
  rmSync(dir, { recursive: true, force: true });
});

const rejection = (promise: Promise<unknown>) => promise.then(() => { throw new Error('expected a rejection'); }, (e: UnicrmError) => e);

describe('accounts', () => {
  it('creates an account with secrets stripped and finds it only in its environment', async () => {
    const account = await core.accounts.create(DEFAULT_ENVIRONMENT, { integration: 'pipeliner', tenant_id: 'acme', context, validate: false });
    expect(account).toMatchObject({
      tenant_id: 'acme',
      environment_id: DEFAULT_ENVIRONMENT,
      integration: { name: 'pipeliner', category: 'crm' },
      status: 'active',
      context: { service_url: context.service_url, space_id: 'fr_Myself' },
      last_error: null,
    });
    expect(JSON.stringify(account)).not.toMatch(/api-token|api-password/);
    expect(await core.accounts.get(DEFAULT_ENVIRONMENT, account.id)).toEqual(account);
    await expect(core.accounts.get('other', account.id)).rejects.toThrow('not found');
  });

  it.each([
    [{ integration: 'salesforce', tenant_id: 't', context }, 'integration'],
    [{ integration: 'pipeliner', tenant_id: 't', context: { ...context, password: undefined } }, 'context.password'],
    [{ integration: 'pipeliner', tenant_id: 't', context: { ...context, service_url: 'http://example.com' } }, 'context.service_url'],
    [{ integration: 'pipeliner', context }, 'tenant_id'],
  ])('rejects %j naming %s', async (body, path) => {
    const error = await rejection(core.accounts.create(DEFAULT_ENVIRONMENT, body));
    expect(error.statusCode).toBe(400);
    expect(error.body.details?.failures?.map((f) => f.path)).toContain(path);
    expect(transport.requests).toHaveLength(0);
  });

  it('checks the credentials with one cheap call, and stores nothing when Pipeliner rejects them', async () => {
    transport.answers.push(json(401, { success: false, http_status: 401, message: 'Invalid API credentials.' }));
    const error = await rejection(core.accounts.create(DEFAULT_ENVIRONMENT, { integration: 'pipeliner', tenant_id: 'acme', context }));
    expect(error.body).toMatchObject({
      statusCode: 422,
      message: 'pipeliner rejected the credentials (401: Invalid API credentials.). Nothing was stored.',
      truto_is_remote_error: true,
    });
    expect(transport.requests[0]?.url).toBe(`${context.service_url}/api/v100/rest/spaces/fr_Myself/entities/Pipelines?first=1&load-only=id`);
    expect((await core.accounts.list(DEFAULT_ENVIRONMENT, '')).result).toEqual([]);

    transport.answers.push(json(200, { success: true, data: [{ id: PIPELINE }] }));
    const account = await core.accounts.create(DEFAULT_ENVIRONMENT, { integration: 'pipeliner', tenant_id: 'acme', context });
    expect((await core.accounts.list(DEFAULT_ENVIRONMENT, 'tenant_id=acme')).result.map((a) => a.id)).toEqual([account.id]);
  });
});

describe('createStage', () => {
  it('creates through the connector and formats the answer', async () => {
    const account = await core.accounts.create(DEFAULT_ENVIRONMENT, { integration: 'pipeliner', tenant_id: 'acme', context, validate: false });
    transport.answers.push(created, json(200, { success: true, data: { id: PIPELINE, name: 'Sales Pipeline' } }));
    const answer = await core.unified.create({ model: 'crm', resource: 'stages',
      environmentId: DEFAULT_ENVIRONMENT,
      query: `integrated_account_id=${account.id}&truto_ignore_remote_data=true`,
      body: { name: 'Won', pipeline: { id: PIPELINE } },
    });
    expect(answer).toEqual({
      statusCode: 201,
      body: {
        id: '22222222-2222-4222-8222-222222222222',
        name: 'Won',
        position: 5,
        status: 'active',
        pipeline: { id: PIPELINE, name: 'Sales Pipeline' },
        created_at: '2024-07-09T12:51:48.050Z',
        updated_at: '2024-07-09T12:51:48.050Z',
      },
    });
  });

  it('answers 404 for an unknown account and 400 for a bad body before any call', async () => {
    const id = '33333333-3333-4333-8333-333333333333';
    expect((await rejection(core.unified.create({ model: 'crm', resource: 'stages', environmentId: DEFAULT_ENVIRONMENT, query: `integrated_account_id=${id}`, body: { name: 'x' } }))).statusCode).toBe(404);
    const bad = await rejection(core.unified.create({ model: 'crm', resource: 'stages', environmentId: DEFAULT_ENVIRONMENT, query: `integrated_account_id=${id}`, body: { name: 5, colour: 'red' } }));
    expect(bad.body.details?.failures?.map((f) => f.path).sort()).toEqual(['colour', 'name']);
    expect((await rejection(core.unified.create({ model: 'crm', resource: 'stages', environmentId: DEFAULT_ENVIRONMENT, query: `integrated_account_id=${id}`, body: [] }))).statusCode).toBe(400);
    expect(transport.requests).toHaveLength(0);
  });

  it('marks the account needs_reauth on a remote 401 until new credentials arrive', async () => {
    const account = await core.accounts.create(DEFAULT_ENVIRONMENT, { integration: 'pipeliner', tenant_id: 'acme', context, validate: false });
    const request = { model: 'crm', resource: 'stages', environmentId: DEFAULT_ENVIRONMENT, query: `integrated_account_id=${account.id}`, body: { name: 'Won' } };
    transport.answers.push(json(401, { success: false, http_status: 401, message: 'Invalid credentials' }));
    const first = await rejection(core.unified.create(request));
    expect(first.body).toMatchObject({ statusCode: 401, truto_is_remote_error: true, message: 'Invalid credentials' });
    expect(await core.accounts.get(DEFAULT_ENVIRONMENT, account.id)).toMatchObject({ status: 'needs_reauth', last_error: 'pipeliner answered 401: Invalid credentials' });

    const second = await rejection(core.unified.create(request));
    expect(second.statusCode).toBe(401);
    expect(second.isRemote).toBe(false);
    expect(transport.requests).toHaveLength(1);

    expect(await core.accounts.update(DEFAULT_ENVIRONMENT, account.id, { context: { password: 'new-password' }, validate: false })).toMatchObject({ status: 'active', last_error: null });
    transport.answers.push(json(201, { success: true, data: { id: 'x', name: 'Won' } }));
    expect((await core.unified.create(request)).statusCode).toBe(201);
    expect(transport.requests[1]?.headers.authorization).toBe(`Basic ${Buffer.from('api-token:new-password').toString('base64')}`);
  });
});

describe('logging', () => {
  it('redacts credentials and authorization wherever they are logged', async () => {
    const lines: string[] = [];
    const logged = createUnicrmCore({
      env: {},
      config: { dataDir: join(dir, 'logs'), logLevel: 'info' },
      logStream: { write: (line: string) => lines.push(line) },
    });
    logged.logger.info({
      authorization: 'Bearer ucrm_SECRET1',
      password: 'SECRET2',
      context: { username: 'SECRET3', password: 'SECRET4', space_id: 'visible' },
      req: { headers: { authorization: 'Bearer SECRET5', cookie: 'SECRET6' } },
      nested: { password: 'SECRET7' },
    }, 'probe');
    await logged.close();
    const text = lines.join('');
    expect(text).toContain('visible');
    expect(text.match(/SECRET\d/g)).toBeNull();
    expect(text.match(/\[redacted\]/g)).toHaveLength(7);
  });
});

describe('API tokens', () => {
  it('issues tokens per environment, refuses expired and revoked ones, and lists them without the token', async () => {
    const staging = await core.tokens.issue({ name: 'ci', environment: 'staging' });
    expect(await core.tokens.authenticate(`Bearer ${staging.token}`)).toEqual({ environmentId: 'staging', tokenId: staging.record.id });
    now = new Date('2026-06-01T12:00:01.000Z');
    const short = await core.tokens.issue({ name: 'short', expiresInDays: 1 });
    expect(short.record.expiresAt).toBe('2026-06-02T12:00:01.000Z');
    expect((await core.tokens.authenticate(`Bearer ${short.token}`)).environmentId).toBe(DEFAULT_ENVIRONMENT);
    now = new Date('2026-06-02T12:00:01.000Z');
    await expect(core.tokens.authenticate(`Bearer ${short.token}`)).rejects.toThrow('The API token expired at 2026-06-02T12:00:01.000Z; use another one.');
    await core.tokens.revoke(staging.record.id);
    await expect(core.tokens.authenticate(`Bearer ${staging.token}`)).rejects.toThrow('was revoked');
    await expect(core.tokens.revoke(staging.record.id)).rejects.toThrow('No active API token');
    const listed = await core.tokens.list();
    expect(listed.map((t) => [t.name, t.status])).toEqual([['ci', 'revoked'], ['short', 'expired']]);
    expect(JSON.stringify(listed)).not.toContain(staging.token);
    await expect(core.tokens.issue({ name: 'x', environment: 'Bad Env' })).rejects.toThrow(UnicrmError);
    await expect(core.tokens.issue({ name: 'x', expiresInDays: -1 })).rejects.toThrow(UnicrmError);
  });

  it('bootstraps one token once, and authenticates only it', async () => {
    const token = await core.tokens.bootstrap();
    expect(token).toMatch(/^ucrm_[A-Za-z0-9_-]{43}$/);
    expect(await core.tokens.bootstrap()).toBeUndefined();
    expect(await core.tokens.authenticate(`Bearer ${token}`)).toEqual({ environmentId: DEFAULT_ENVIRONMENT, tokenId: expect.any(String) });
    for (const header of [undefined, '', `Basic ${token}`, `Bearer ${token}x`, 'Bearer']) {
      await expect(core.tokens.authenticate(header)).rejects.toThrow(UnicrmError);
    }
  });

  it('accepts UNICRM_API_TOKEN and then makes none', async () => {
    const other = createUnicrmCore({ env: { UNICRM_API_TOKEN: 'static-token' }, config: { dataDir: join(dir, 'b'), logLevel: 'silent' } });
    expect(await other.tokens.bootstrap()).toBeUndefined();
    expect(await other.tokens.authenticate('Bearer static-token')).toEqual({ environmentId: DEFAULT_ENVIRONMENT, tokenId: 'static' });
    await expect(other.tokens.authenticate('Bearer static-tokem')).rejects.toThrow('API token');
    await other.close();
  });
});
