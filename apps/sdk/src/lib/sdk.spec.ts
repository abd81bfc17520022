import { createApp } from '@unicrm/api';
import { createUnicrmCore, UNICRM_VERSION, type UnicrmCore } from '@unicrm/core';
import { type RunningSandbox, SANDBOX_SEED_IDS, startSandbox } from '@unicrm/sandboxes';
import { createServer, type IncomingHttpHeaders, type RequestListener, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUnicrm, createUnicrmClient, isUnicrmError, responseMeta, SDK_VERSION, type Unicrm, UnicrmError } from '../index';

// One suite, two transports: every test below runs against the embedded client (the core in this process) and the
// remote client (HTTP to the API app on 127.0.0.1), with one data directory, one account and one Pipeliner sandbox.
// The remote client runs with `retry: false` here, so that each failure is seen as the server sent it; its
// retries are tested in remote-retry.spec.ts.

const TOKEN = 'sdk-suite-token';
const SALES = SANDBOX_SEED_IDS.salesPipelineId;
const MISSING_PIPELINE = '99999999-9999-4999-8999-999999999999';
const MISSING_ACCOUNT = '6b1c4f7e-2a3d-4e5f-8a9b-0c1d2e3f4a5b';

let sandbox: RunningSandbox;
let dir: string;
let core: UnicrmCore;
let server: Server;
let baseUrl: string;
let accountId: string;
/** What reached the API over HTTP: path with query, and headers. */
const seen: { url: string; headers: IncomingHttpHeaders }[] = [];

function listen(handler: RequestListener): Promise<Server> {
  return new Promise((resolve) => {
    const s = createServer(handler);
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
}
const urlOf = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
const close = (s: Server) => new Promise<void>((resolve) => s.close(() => resolve()));

async function failure(promise: Promise<unknown>): Promise<UnicrmError> {
  const error = await promise.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );
  if (!isUnicrmError(error)) throw error;
  expect(error).toBeInstanceOf(UnicrmError);
  return error;
}

/** Removes what differs between two creates of the same stage: ids, revisions and server times. */
function stable(body: unknown): unknown {
  return JSON.parse(JSON.stringify(body), (key, value) =>
    ['id', 'created', 'modified', 'created_at', 'updated_at', 'revision'].includes(key) && value !== null ? '<varies>' : value,
  );
}

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0, contract: true });
  dir = mkdtempSync(join(tmpdir(), 'unicrm-sdk-'));
  // No rate limits here (the suite sends more than 50 creates per 10 s for one account); cli.spec.ts tests them.
  core = createUnicrmCore({
    env: {},
    config: { dataDir: dir, apiToken: TOKEN, logLevel: 'silent', rateLimits: { perToken: 0, perAccount: 0, windowMs: 10_000 } },
  });
  const app = createApp(core);
  server = await listen((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    app(req, res);
  });
  baseUrl = urlOf(server);
  const account = await core.accounts.create('default', {
    integration: 'pipeliner',
    tenant_id: 'acme',
    context: { service_url: sandbox.serviceUrl, space_id: sandbox.spaceId, username: sandbox.username, password: sandbox.password },
  });
  accountId = account.id;
});

afterEach(() => expect(sandbox.takeContractViolations()).toEqual([]));
afterAll(async () => {
  server.closeAllConnections();
  await close(server);
  await core.close();
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  sandbox.reset();
  seen.length = 0;
});

const transports: [string, () => Unicrm][] = [
  ['embedded', () => createUnicrm({ dataDir: dir })],
  ['remote', () => createUnicrmClient({ baseUrl, token: TOKEN, retry: false })],
];

describe.each(transports)('the %s SDK', (_name, make) => {
  let sdk: Unicrm;
  beforeAll(() => {
    sdk = make();
  });
  afterAll(() => sdk.close());

  describe('crm.stages.create', () => {
    it('creates a stage in Pipeliner and answers the unified stage', async () => {
      const stage = await sdk.crm.stages.create(
        { integrated_account_id: accountId },
        { name: 'Contract Sent', pipeline: { id: SALES }, position: 3 },
      );
      const step = sandbox.steps().find((s) => s.id === stage.id);
      expect(step).toMatchObject({ name: 'Contract Sent', pipeline_id: SALES, sort_order: 3 });
      expect(stage).toMatchObject({
        name: 'Contract Sent',
        position: 3,
        status: 'active',
        pipeline: { id: SALES, name: 'Sales Pipeline' },
        remote_data: { id: stage.id, name: 'Contract Sent', pipeline_id: SALES, sort_order: 3, is_deleted: false },
      });
      expect(stage.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(stage.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(Object.keys(stage)).toEqual(['id', 'name', 'position', 'status', 'pipeline', 'created_at', 'updated_at', 'remote_data']);
    });

    it("answers Pipeliner's own body, parsed, in the raw format", async () => {
      const raw = await sdk.crm.stages.create(
        { integrated_account_id: accountId, truto_response_format: 'raw', truto_exclude_fields: ['data'] },
        { name: 'Raw', pipeline: { id: SALES } },
      );
      expect(raw).toMatchObject({ success: true, data: { name: 'Raw', pipeline_id: SALES, is_deleted: false } });
      expect(Object.keys(raw)).toEqual(['success', 'data']);
    });

    it('answers every field with nulls and no remote_data in the normalized format', async () => {
      const stage = await sdk.crm.stages.create(
        { integrated_account_id: accountId, truto_response_format: 'normalized' },
        { name: 'Loose step' },
      );
      expect(Object.keys(stage)).toEqual(['id', 'name', 'position', 'status', 'pipeline', 'created_at', 'updated_at']);
      expect(stage).toMatchObject({ name: 'Loose step', status: 'active', pipeline: null });
      expect(typeof stage.id).toBe('string');
    });

    it('applies truto_ignore_remote_data and truto_exclude_fields (dot paths)', async () => {
      const lean = await sdk.crm.stages.create(
        { integrated_account_id: accountId, truto_ignore_remote_data: true },
        { name: 'Lean', pipeline: { id: SALES } },
      );
      expect(lean.remote_data).toBeUndefined();
      expect(lean.pipeline).toEqual({ id: SALES, name: 'Sales Pipeline' });

      const trimmed = await sdk.crm.stages.create(
        { integrated_account_id: accountId, truto_exclude_fields: ['pipeline.name', 'created_at', 'remote_data.revision'] },
        { name: 'Trimmed', pipeline: { id: SALES } },
      );
      expect(trimmed.pipeline).toEqual({ id: SALES });
      expect(trimmed).not.toHaveProperty('created_at');
      expect(trimmed.updated_at).toBeDefined();
      expect(trimmed.remote_data).not.toHaveProperty('revision');
      expect(trimmed.remote_data).toHaveProperty('sort_order');
    });

    it('sends remote_query to Pipeliner as bracket keys and merges remote_data into its body', async () => {
      const stage = await sdk.crm.stages.create(
        { integrated_account_id: accountId, remote_query: { expand: 'pipeline', filter: { name: 'a b' } } },
        { name: 'Expanded', pipeline: { id: SALES }, remote_data: { percent: 40 } },
      );
      const post = sandbox.requests.find((r) => r.method === 'POST');
      expect(decodeURIComponent(post?.query ?? '')).toBe('validation-level=8&expand=pipeline&filter[name]=a b');
      expect(JSON.parse(post?.body ?? '{}')).toEqual({ name: 'Expanded', pipeline_id: SALES, percent: 40 });
      expect(stage.remote_data).toMatchObject({ percent: 40, pipeline: { id: SALES, name: 'Sales Pipeline' } });
      // The expanded pipeline gave its name: no second call to Pipeliner.
      expect(sandbox.requests).toHaveLength(1);
    });

    it('rejects an invalid body with 400 naming each field', async () => {
      const error = await failure(
        sdk.crm.stages.create({ integrated_account_id: accountId }, { name: 'x', position: -1, colour: 'red' } as never),
      );
      expect(error.statusCode).toBe(400);
      expect(error.isRemote).toBe(false);
      expect(error.body.details?.failures.map((f) => f.path).sort()).toEqual(['colour', 'position']);
      expect(sandbox.requests).toHaveLength(0);
    });

    it('rejects a bad query with 400 naming the parameter', async () => {
      const error = await failure(
        sdk.crm.stages.create({ integrated_account_id: accountId, truto_response_format: 'xml' as 'raw' }, { name: 'x' }),
      );
      expect(error.statusCode).toBe(400);
      expect(error.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      expect(error.body.details?.failures).toEqual([{ path: 'truto_response_format', message: 'must be one of: unified, raw, normalized' }]);
    });

    it('rejects a missing name with the missing_required_body_fields insight', async () => {
      const error = await failure(sdk.crm.stages.create({ integrated_account_id: accountId }, { name: '  ' }));
      expect(error.statusCode).toBe(400);
      expect(error.body.truto_error_insight?.missing_required_body_fields?.value).toEqual(['name']);
    });

    it("mirrors a remote error: Pipeliner's status, message and body", async () => {
      const error = await failure(
        sdk.crm.stages.create({ integrated_account_id: accountId }, { name: 'Orphan', pipeline: { id: MISSING_PIPELINE } }),
      );
      expect(error.statusCode).toBe(422);
      expect(error.isRemote).toBe(true);
      expect(error.body).toMatchObject({ statusCode: 422, error: 'Unprocessable Entity', truto_is_remote_error: true });
      expect(error.message).toBe(error.body.message);
      expect(error.message.length).toBeGreaterThan(0);
      expect(error.body.raw_response).toMatchObject({ success: false, http_status: 422 });
      expect(error.body.truto_error_insight?.remote_error).toBeDefined();
      expect(sandbox.steps().some((s) => s.name === 'Orphan')).toBe(false);
    });

    it('forwards Retry-After of a rate-limited Pipeliner answer on error.headers', async () => {
      sandbox.injectFault({ method: 'POST', path: '/entities/Steps', status: 429, retryAfter: 7, times: 1 });
      const error = await failure(sdk.crm.stages.create({ integrated_account_id: accountId }, { name: 'Busy' }));
      expect(error.statusCode).toBe(429);
      expect(error.headers).toEqual({ 'retry-after': '7' });
      expect(error.body.truto_error_insight?.rate_limit_error).toBeDefined();
    });

    it('creates once per idempotency key and answers a repeat with the first answer', async () => {
      const key = `sdk-suite-${Math.random().toString(36).slice(2)}`;
      const query = { integrated_account_id: accountId, truto_response_format: 'normalized' as const };
      const first = await sdk.crm.stages.create(query, { name: 'Once', pipeline: { id: SALES } }, { idempotencyKey: key });
      const again = await sdk.crm.stages.create(query, { name: 'Once', pipeline: { id: SALES } }, { idempotencyKey: key });
      expect(again).toEqual(first);
      expect(sandbox.steps().filter((s) => s.name === 'Once')).toHaveLength(1);
      expect(sandbox.requests.filter((r) => r.method === 'POST')).toHaveLength(1);

      const reused = await failure(sdk.crm.stages.create(query, { name: 'Other' }, { idempotencyKey: key }));
      expect(reused.statusCode).toBe(422);
      expect(reused.message).toBe('This Idempotency-Key was used with a different request; use a new key for a new request.');
      const bad = await failure(sdk.crm.stages.create(query, { name: 'x' }, { idempotencyKey: 'ü' }));
      expect(bad.statusCode).toBe(400);
      expect(bad.body.details?.failures).toEqual([{ path: 'Idempotency-Key', message: 'must be 1 to 255 printable ASCII characters' }]);
    });

    it('tells a replayed answer from a new create with responseMeta, without changing the body', async () => {
      const key = `sdk-meta-${Math.random().toString(36).slice(2)}`;
      const query = { integrated_account_id: accountId };
      const first = await sdk.crm.stages.create(query, { name: 'Meta', pipeline: { id: SALES } }, { idempotencyKey: key });
      const again = await sdk.crm.stages.create(query, { name: 'Meta', pipeline: { id: SALES } }, { idempotencyKey: key });
      expect(responseMeta(first)).toEqual({ statusCode: 201, replayed: false, idempotencyKey: key, attempts: 1 });
      expect(responseMeta(again)).toEqual({ statusCode: 201, replayed: true, idempotencyKey: key, attempts: 1 });
      // Not enumerable: the body is still exactly the API's.
      expect(Object.keys(again)).toEqual(Object.keys(first));
      expect(JSON.stringify(again)).toBe(JSON.stringify(first));
      expect(responseMeta({ ...again })).toBeUndefined();
      // A create without a key: never replayed; the remote client sends one of its own (and says which).
      const loose = await sdk.crm.stages.create(query, { name: 'Meta 2' });
      expect(responseMeta(loose)).toMatchObject({ statusCode: 201, replayed: false });
      expect(responseMeta(await sdk.accounts.get(accountId))).toBeUndefined();
      // A replayed error (Pipeliner's 422, stored for the key) carries the mark on error.headers.
      const orphan = `sdk-meta-${Math.random().toString(36).slice(2)}`;
      const missing = { name: 'Orphan', pipeline: { id: MISSING_PIPELINE } };
      const once = await failure(sdk.crm.stages.create(query, missing, { idempotencyKey: orphan }));
      const twice = await failure(sdk.crm.stages.create(query, missing, { idempotencyKey: orphan }));
      expect([once.statusCode, twice.statusCode]).toEqual([422, 422]);
      expect(once.headers['idempotent-replayed']).toBeUndefined();
      expect(twice.headers['idempotent-replayed']).toBe('true');
    });

    it('answers 404 for an unknown integrated account', async () => {
      const error = await failure(sdk.crm.stages.create({ integrated_account_id: MISSING_ACCOUNT }, { name: 'x' }));
      expect(error.statusCode).toBe(404);
      expect(error.message).toBe(`Integrated account ${MISSING_ACCOUNT} not found.`);
    });
  });

  describe('accounts', () => {
    it('creates, reads, updates and deletes an integrated account without showing its secrets', async () => {
      const context = { service_url: sandbox.serviceUrl, space_id: sandbox.spaceId, username: 'u-secret', password: 'p-secret' };
      const created = await sdk.accounts.create({ integration: 'pipeliner', tenant_id: 'globex', context, validate: false });
      expect(created).toMatchObject({
        tenant_id: 'globex',
        environment_id: 'default',
        integration: { name: 'pipeliner', category: 'crm' },
        status: 'active',
        context: { service_url: sandbox.serviceUrl, space_id: sandbox.spaceId },
        last_error: null,
      });
      expect(JSON.stringify(created)).not.toMatch(/secret/);
      expect(sandbox.requests).toHaveLength(0); // validate: false

      expect(await sdk.accounts.get(created.id)).toEqual(created);
      const updated = await sdk.accounts.update(created.id, { tenant_id: 'globex-2', context: { space_id: 'other_space' }, validate: false });
      expect(updated).toMatchObject({ id: created.id, tenant_id: 'globex-2', context: { space_id: 'other_space' } });
      expect(await sdk.accounts.delete(created.id)).toEqual({ id: created.id });
      const gone = await failure(sdk.accounts.get(created.id));
      expect(gone.statusCode).toBe(404);
      expect((await failure(sdk.accounts.delete(created.id))).statusCode).toBe(404);
    });

    it('checks the credentials with Pipeliner first, and stores nothing when it refuses them', async () => {
      const context = { service_url: sandbox.serviceUrl, space_id: sandbox.spaceId, username: sandbox.username, password: 'wrong' };
      const error = await failure(sdk.accounts.create({ integration: 'pipeliner', tenant_id: 'refused', context }));
      expect(error.statusCode).toBe(422);
      expect(error.isRemote).toBe(true);
      expect(error.message).toMatch(/^pipeliner rejected the credentials \(401: .*\)\. Nothing was stored\.$/);
      expect((await sdk.accounts.list({ tenant_id: 'refused' })).result).toEqual([]);
    });

    it('lists accounts with filters and a cursor', async () => {
      const tenant = `list-${Math.random().toString(36).slice(2)}`;
      const context = { service_url: sandbox.serviceUrl, space_id: sandbox.spaceId, username: sandbox.username, password: sandbox.password };
      const a = await sdk.accounts.create({ integration: 'pipeliner', tenant_id: tenant, context });
      const b = await sdk.accounts.create({ integration: 'pipeliner', tenant_id: tenant, context });
      const all = await sdk.accounts.list({ tenant_id: tenant });
      expect(all).toEqual({ result: [a, b], next_cursor: null, limit: 100 });
      const first = await sdk.accounts.list({ tenant_id: tenant, limit: 1 });
      expect(first.result).toEqual([a]);
      expect(first.next_cursor).toEqual(expect.any(String));
      const second = await sdk.accounts.list({ tenant_id: tenant, limit: 1, next_cursor: first.next_cursor as string });
      expect(second).toEqual({ result: [b], next_cursor: null, limit: 1 });
      expect((await sdk.accounts.list()).result.map((x) => x.id)).toEqual(expect.arrayContaining([a.id, b.id, accountId]));
      const bad = await failure(sdk.accounts.list({ limit: 0 }));
      expect(bad.statusCode).toBe(400);
      expect(bad.body.details?.failures[0]?.path).toBe('limit');
    });

    it('rejects an invalid account with 400 naming each field', async () => {
      const error = await failure(sdk.accounts.create({ integration: 'pipeliner', tenant_id: '', context: {} }));
      expect(error.statusCode).toBe(400);
      expect(error.body.details?.failures.map((f) => f.path)).toContain('tenant_id');
    });
  });
});

describe('both transports', () => {
  let embedded: Unicrm;
  let remote: Unicrm;
  beforeAll(() => {
    embedded = createUnicrm({ dataDir: dir });
    remote = createUnicrmClient({ baseUrl, token: TOKEN, retry: false });
  });
  afterAll(async () => {
    await embedded.close();
    await remote.close();
  });

  it.each(['unified', 'raw', 'normalized'] as const)('answer the same body in the %s format', async (format) => {
    const query = { integrated_account_id: accountId, truto_response_format: format, truto_exclude_fields: ['remote_data.percent'] };
    const body = { name: 'Twin', pipeline: { id: SALES }, position: 2, remote_data: { percent: 60 } };
    sandbox.reset();
    const a = await embedded.crm.stages.create(query, body);
    sandbox.reset();
    const b = await remote.crm.stages.create(query, body);
    expect(stable(b)).toEqual(stable(a));
  });

  it('send the JSON of the body: a getter is read once, and the idempotency fingerprint is what Pipeliner got', async () => {
    for (const [name, sdk] of [['embedded', embedded], ['remote', remote]] as const) {
      sandbox.reset();
      let reads = 0;
      const remoteData = {
        get percent() {
          reads += 1;
          return 10 * reads;
        },
      };
      const key = `getter-${name}-${Math.random().toString(36).slice(2)}`;
      const query = { integrated_account_id: accountId };
      await sdk.crm.stages.create(query, { name: `Getter ${name}`, remote_data: remoteData }, { idempotencyKey: key });
      expect([name, reads]).toEqual([name, 1]);
      expect(sandbox.steps().find((step) => step.name === `Getter ${name}`)?.percent).toBe(10);
      // The same JSON again is a replay, not a 422: the fingerprint was taken of what was sent.
      await sdk.crm.stages.create(query, { name: `Getter ${name}`, remote_data: { percent: 10 } }, { idempotencyKey: key });
      expect(sandbox.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    }
  });

  it('refuse a body that cannot be JSON (embedded: a 400 naming why)', async () => {
    const body: Record<string, unknown> = { name: 'Cycle' };
    body.remote_data = { self: body };
    const error = await failure(embedded.crm.stages.create({ integrated_account_id: accountId }, body as { name: string }));
    expect(error.statusCode).toBe(400);
    expect(error.message).toMatch(/^The body cannot be written as JSON: .*circular/i);
    expect(sandbox.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
  });

  it.each([
    ['a validation error', { integrated_account_id: accountId, truto_exclude_fields: ['a..b'] }, { name: 'x' }],
    ['a remote error', { integrated_account_id: accountId }, { name: 'x', pipeline: { id: MISSING_PIPELINE } }],
    ['an unknown account', { integrated_account_id: MISSING_ACCOUNT }, { name: 'x' }],
  ])('throw the same UnicrmError for %s', async (_what, query, body) => {
    const a = await failure(embedded.crm.stages.create(query, body));
    const b = await failure(remote.crm.stages.create(query, body));
    expect(b.statusCode).toBe(a.statusCode);
    expect(b.message).toBe(a.message);
    expect(b.body).toEqual(a.body);
    expect(b.headers).toEqual(a.headers);
  });
});

describe('the remote SDK only', () => {
  it('sends Bearer auth, its User-Agent and the query in the qs indices format', async () => {
    const sdk = createUnicrmClient({ baseUrl, token: TOKEN, userAgent: 'acme-app/2.1', retry: false });
    await sdk.crm.stages.create(
      {
        integrated_account_id: accountId,
        truto_ignore_remote_data: true,
        truto_exclude_fields: ['created_at', 'pipeline.name'],
        remote_query: { expand: 'pipeline' },
      },
      { name: 'Headers' },
      { idempotencyKey: 'key-1' },
    );
    await sdk.close();
    const request = seen.find((s) => s.url.startsWith('/unified/crm/stages'));
    expect(request?.url).toBe(
      `/unified/crm/stages?integrated_account_id=${accountId}&truto_ignore_remote_data=true` +
        '&truto_exclude_fields%5B0%5D=created_at&truto_exclude_fields%5B1%5D=pipeline.name&remote_query%5Bexpand%5D=pipeline',
    );
    expect(request?.headers).toMatchObject({
      authorization: `Bearer ${TOKEN}`,
      'user-agent': `acme-app/2.1 unicrm-sdk/${SDK_VERSION}`,
      accept: 'application/json',
      'content-type': 'application/json',
      'idempotency-key': 'key-1',
    });
    expect(SDK_VERSION).toBe(UNICRM_VERSION);
  });

  it('rejects a bad token with a 401 that is not a remote error', async () => {
    const sdk = createUnicrmClient({ baseUrl, token: 'wrong-token', retry: false });
    const error = await failure(sdk.accounts.get(accountId));
    await sdk.close();
    expect(error.statusCode).toBe(401);
    expect(error.isRemote).toBe(false);
    expect(error.body).toEqual({ statusCode: 401, error: 'Unauthorized', message: expect.stringContaining('token') });
  });

  it('gives up after timeoutMs with a 504', async () => {
    sandbox.injectFault({ method: 'POST', path: '/entities/Steps', hang: true, times: 1 });
    const sdk = createUnicrmClient({ baseUrl, token: TOKEN, timeoutMs: 300, retry: false });
    const started = Date.now();
    const error = await failure(sdk.crm.stages.create({ integrated_account_id: accountId }, { name: 'Slow' }));
    await sdk.close();
    expect(Date.now() - started).toBeLessThan(3000);
    expect(error.statusCode).toBe(504);
    expect(error.isRemote).toBe(false);
    expect(error.message).toBe(
      `unicrm at ${baseUrl} did not answer POST /unified/crm/stages within 300 ms. A create may still have been carried out.`,
    );
    sandbox.reset(); // ends the hung Pipeliner request
  });

  it('reports an unreachable server as a 502 naming the address', async () => {
    const gone = await listen(() => undefined);
    const url = urlOf(gone);
    await close(gone);
    const sdk = createUnicrmClient({ baseUrl: url, token: TOKEN, retry: false });
    const error = await failure(sdk.accounts.get(accountId));
    await sdk.close();
    expect(error.statusCode).toBe(502);
    expect(error.message).toBe(`Could not reach unicrm at ${url} for GET /integrated-account/:id (ECONNREFUSED). Is the server running?`);
    expect((error as Error & { cause?: unknown }).cause).toBeDefined();
  });

  it('turns answers that are not unicrm JSON into UnicrmErrors', async () => {
    const proxy = await listen((req, res) => {
      if (req.url?.startsWith('/integrated-account/html')) {
        res.writeHead(503, { 'content-type': 'text/html', 'retry-after': '30' }).end('<html><body>Service Unavailable</body></html>');
      } else {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('OK');
      }
    });
    const sdk = createUnicrmClient({ baseUrl: `${urlOf(proxy)}/`, token: TOKEN, retry: false });
    const html = await failure(sdk.accounts.get('html'));
    expect(html.statusCode).toBe(503);
    expect(html.message).toBe(
      `${urlOf(proxy)} answered GET /integrated-account/:id with 503 Service Unavailable and a body that is not a unicrm error: ` +
        '<html><body>Service Unavailable</body></html>',
    );
    expect(html.headers).toEqual({ 'retry-after': '30' });
    const text = await failure(sdk.accounts.get('text'));
    expect(text.statusCode).toBe(502);
    expect(text.message).toBe(`unicrm at ${urlOf(proxy)} answered GET /integrated-account/:id with 200 and a body that is not JSON: OK`);
    await sdk.close();
    proxy.closeAllConnections();
    await close(proxy);
  });

  it('checks its options and refuses calls once closed', async () => {
    expect(() => createUnicrmClient({ baseUrl: 'ftp://x', token: TOKEN, retry: false })).toThrow(TypeError);
    expect(() => createUnicrmClient({ baseUrl: 'not a url', token: TOKEN, retry: false })).toThrow('baseUrl must be an http(s) URL');
    expect(() => createUnicrmClient({ baseUrl, token: ' ', retry: false })).toThrow('token must be a non-empty API token.');
    expect(() => createUnicrmClient({ baseUrl, token: TOKEN, timeoutMs: 0, retry: false })).toThrow('timeoutMs must be a positive number');
    const sdk = createUnicrmClient({ baseUrl, token: TOKEN, retry: false });
    await sdk.close();
    await sdk.close();
    await expect(sdk.accounts.get(accountId)).rejects.toThrow('This unicrm client is closed.');
  });
});
