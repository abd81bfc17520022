import { type HttpRequest, type HttpResponse, type HttpTransport, TOKENS, UnicrmError } from '@unicrm/model';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ENVIRONMENT } from './api-tokens';
import { createUnicrmCore, type UnicrmCore } from './core';

/** Answers from a queue and records what was sent: the core's only outside world in these tests. */
class FakeTransport implements HttpTransport {
  readonly requests: HttpRequest[] = [];
  readonly answers: HttpResponse[] = [];
  async request(request: HttpRequest): Promise<HttpResponse> {
    this.requests.push(request);
    const answer = this.answers.shift();
    if (!answer) throw new Error('no answer queued');
    return answer;
  }
  async close(): Promise<void> {}
}

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

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'unicrm-core-'));
  transport = new FakeTransport();
  core = createUnicrmCore({
    env: {},
    config: { dataDir: dir, logLevel: 'silent' },
    register: (c) => c.register(TOKENS.HttpTransport, { useValue: transport }),
  });
});
afterEach(async () => {
  await core.close();
  rmSync(dir, { recursive: true, force: true });
});

const rejection = (promise: Promise<unknown>) => promise.then(() => { throw new Error('expected a rejection'); }, (e: UnicrmError) => e);

describe('accounts', () => {
  it('creates an account with secrets stripped and finds it only in its environment', () => {
    const account = core.accounts.create(DEFAULT_ENVIRONMENT, { integration: 'pipeliner', tenant_id: 'acme', context });
    expect(account).toMatchObject({
      tenant_id: 'acme',
      environment_id: DEFAULT_ENVIRONMENT,
      integration: { name: 'pipeliner', category: 'crm' },
      status: 'active',
      context: { service_url: context.service_url, space_id: 'fr_Myself' },
      last_error: null,
    });
    expect(JSON.stringify(account)).not.toMatch(/api-token|api-password/);
    expect(core.accounts.get(DEFAULT_ENVIRONMENT, account.id)).toEqual(account);
    expect(() => core.accounts.get('other', account.id)).toThrow('not found');
  });

  it.each([
    [{ integration: 'hubspot', tenant_id: 't', context }, 'integration'],
    [{ integration: 'pipeliner', tenant_id: 't', context: { ...context, password: undefined } }, 'context.password'],
    [{ integration: 'pipeliner', tenant_id: 't', context: { ...context, service_url: 'http://example.com' } }, 'context.service_url'],
    [{ integration: 'pipeliner', context }, 'tenant_id'],
  ])('rejects %j naming %s', (body, path) => {
    try {
      core.accounts.create(DEFAULT_ENVIRONMENT, body);
      throw new Error('expected a rejection');
    } catch (error) {
      expect((error as UnicrmError).statusCode).toBe(400);
      expect((error as UnicrmError).body.details?.failures?.map((f) => f.path)).toContain(path);
    }
  });
});

describe('createStage', () => {
  it('creates through the connector and formats the answer', async () => {
    const account = core.accounts.create(DEFAULT_ENVIRONMENT, { integration: 'pipeliner', tenant_id: 'acme', context });
    transport.answers.push(created, json(200, { success: true, data: { id: PIPELINE, name: 'Sales Pipeline' } }));
    const answer = await core.createStage({
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
    expect((await rejection(core.createStage({ environmentId: DEFAULT_ENVIRONMENT, query: `integrated_account_id=${id}`, body: { name: 'x' } }))).statusCode).toBe(404);
    const bad = await rejection(core.createStage({ environmentId: DEFAULT_ENVIRONMENT, query: `integrated_account_id=${id}`, body: { name: 5, colour: 'red' } }));
    expect(bad.body.details?.failures?.map((f) => f.path).sort()).toEqual(['colour', 'name']);
    expect((await rejection(core.createStage({ environmentId: DEFAULT_ENVIRONMENT, query: `integrated_account_id=${id}`, body: [] }))).statusCode).toBe(400);
    expect(transport.requests).toHaveLength(0);
  });

  it('marks the account needs_reauth on a remote 401 until new credentials arrive', async () => {
    const account = core.accounts.create(DEFAULT_ENVIRONMENT, { integration: 'pipeliner', tenant_id: 'acme', context });
    const request = { environmentId: DEFAULT_ENVIRONMENT, query: `integrated_account_id=${account.id}`, body: { name: 'Won' } };
    transport.answers.push(json(401, { success: false, http_status: 401, message: 'Invalid credentials' }));
    const first = await rejection(core.createStage(request));
    expect(first.body).toMatchObject({ statusCode: 401, truto_is_remote_error: true, message: 'Invalid credentials' });
    expect(core.accounts.get(DEFAULT_ENVIRONMENT, account.id)).toMatchObject({ status: 'needs_reauth', last_error: 'pipeliner answered 401: Invalid credentials' });

    const second = await rejection(core.createStage(request));
    expect(second.statusCode).toBe(401);
    expect(second.isRemote).toBe(false);
    expect(transport.requests).toHaveLength(1);

    expect(core.accounts.update(DEFAULT_ENVIRONMENT, account.id, { context: { password: 'new-password' } })).toMatchObject({ status: 'active', last_error: null });
    transport.answers.push(json(201, { success: true, data: { id: 'x', name: 'Won' } }));
    expect((await core.createStage(request)).statusCode).toBe(201);
    expect(transport.requests[1]?.headers.authorization).toBe(`Basic ${Buffer.from('api-token:new-password').toString('base64')}`);
  });
});

describe('API tokens', () => {
  it('bootstraps one token once, and authenticates only it', () => {
    const token = core.tokens.bootstrap();
    expect(token).toMatch(/^ucrm_[A-Za-z0-9_-]{43}$/);
    expect(core.tokens.bootstrap()).toBeUndefined();
    expect(core.tokens.authenticate(`Bearer ${token}`)).toBe(DEFAULT_ENVIRONMENT);
    for (const header of [undefined, '', `Basic ${token}`, `Bearer ${token}x`, 'Bearer']) {
      expect(() => core.tokens.authenticate(header)).toThrow(UnicrmError);
    }
  });

  it('accepts UNICRM_API_TOKEN and then makes none', async () => {
    const other = createUnicrmCore({ env: { UNICRM_API_TOKEN: 'static-token' }, config: { dataDir: join(dir, 'b'), logLevel: 'silent' } });
    expect(other.tokens.bootstrap()).toBeUndefined();
    expect(other.tokens.authenticate('Bearer static-token')).toBe(DEFAULT_ENVIRONMENT);
    expect(() => other.tokens.authenticate('Bearer static-tokem')).toThrow('API token');
    await other.close();
  });
});
