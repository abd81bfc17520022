import { createUnicrmCore, type UnicrmCore } from '@unicrm/core';
import { formatContractViolation, type RunningPipedriveSandbox, type RunningSandbox, startPipedriveSandbox, startSandbox } from '@unicrm/sandboxes';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { createApp, type UnicrmApp } from './app';

// Pipedrive through the real app, against the Pipedrive sandbox (contract-checked) on an ephemeral port: both auth
// modes, every method, formats, the 400s for what API v2 cannot do, remote errors, an idempotent create reconciled,
// and core's OAuth refresh (one refresh for 20 concurrent calls, a refresh after a 401, a refused refresh).
const TOKEN = 'pipedrive-test-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
let sandbox: RunningPipedriveSandbox;
let core: UnicrmCore;
let app: UnicrmApp;
let dir: string;
let tokenAccount: string;

async function connect(context: Record<string, unknown>, validate = true): Promise<string> {
  const res = await request(app).post('/integrated-account').set(AUTH).send({ integration: 'pipedrive', tenant_id: 'acme', context, validate });
  if (res.status !== 201) throw new Error(`could not connect: ${res.status} ${res.text}`);
  return res.body.id as string;
}

function oauthContext(seconds: number): Record<string, unknown> {
  const issued = sandbox.issueTokens(seconds);
  return {
    api_domain: sandbox.url,
    access_token: issued.access_token,
    refresh_token: issued.refresh_token,
    expires_at: issued.expires_at,
    client_id: sandbox.instance.config.clientId,
    client_secret: sandbox.instance.config.clientSecret,
    token_url: sandbox.tokenUrl,
  };
}

const q = (account: string, extra = '') => `integrated_account_id=${account}${extra}`;

beforeAll(async () => {
  sandbox = await startPipedriveSandbox({ port: 0, contract: true });
  dir = mkdtempSync(join(tmpdir(), 'unicrm-pipedrive-'));
  core = createUnicrmCore({
    env: {},
    logStream: { write: () => undefined },
    config: { dataDir: dir, apiToken: TOKEN, logLevel: 'warn', rateLimits: { perToken: 0, perAccount: 0, windowMs: 10_000 } },
  });
  app = createApp(core);
  tokenAccount = await connect({ api_domain: sandbox.url, api_token: sandbox.instance.config.apiToken });
});
beforeEach(() => sandbox.reset());
afterEach(() => expect(sandbox.takeContractViolations().map(formatContractViolation)).toEqual([]));
afterAll(async () => {
  app.close();
  await core.close();
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Pipedrive with an API token', () => {
  it('lists pipelines with their stages, creates a stage, lists, renames, gets and deletes it', async () => {
    const pipelines = await request(app).get(`/unified/crm/pipelines?${q(tokenAccount)}`).set(AUTH);
    expect(pipelines.status).toBe(200);
    expect(pipelines.body.result[0]).toMatchObject({ id: '1', name: 'Sales Pipeline', entity: 'opportunity' });
    expect(pipelines.body.result[0].stages.map((s: { name: string }) => s.name)).toEqual(['Lead In', 'Contact Made', 'Demo Scheduled', 'Proposal Made', 'Negotiations Started']);

    const created = await request(app).post(`/unified/crm/stages?${q(tokenAccount)}`).set(AUTH).send({ name: 'Contract Sent', pipeline: { id: '1' }, remote_data: { deal_probability: 80 } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'Contract Sent', position: 6, status: 'active', pipeline: { id: '1', name: 'Sales Pipeline' }, remote_data: { deal_probability: 80, pipeline_id: 1 } });
    expect(created.body.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    const id = created.body.id as string;
    expect(sandbox.requests.find((r) => r.method === 'POST')?.headers['x-api-token']).toBe(sandbox.instance.config.apiToken);

    const page = await request(app).get(`/unified/crm/stages?${q(tokenAccount, '&pipeline[id]=1&limit=4')}`).set(AUTH);
    expect(page.body.result.map((s: { id: string }) => s.id)).toEqual(['1', '2', '3', '4']);
    const next = await request(app).get(`/unified/crm/stages?${q(tokenAccount, `&pipeline[id]=1&limit=4&next_cursor=${encodeURIComponent(page.body.next_cursor)}`)}`).set(AUTH);
    expect(next.body).toMatchObject({ next_cursor: null, prev_cursor: null, result_count: 2 });
    expect(next.body.result.map((s: { id: string }) => s.id)).toEqual(['5', id]);

    const renamed = await request(app).patch(`/unified/crm/stages/${id}?${q(tokenAccount)}`).set(AUTH).send({ name: 'Contract Signed' });
    expect(renamed.body).toMatchObject({ id, name: 'Contract Signed', position: 6 });
    const got = await request(app).get(`/unified/crm/stages/${id}?${q(tokenAccount)}`).set(AUTH);
    expect(got.body).toMatchObject({ id, name: 'Contract Signed', status: 'active' });

    const deleted = await request(app).delete(`/unified/crm/stages/${id}?${q(tokenAccount)}`).set(AUTH);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({ id, name: 'Contract Signed', status: 'inactive' });
    expect((await request(app).get(`/unified/crm/stages/${id}?${q(tokenAccount)}`).set(AUTH)).body.status).toBe('inactive');
    expect((await request(app).delete(`/unified/crm/stages/${id}?${q(tokenAccount)}`).set(AUTH)).status).toBe(404);
  });

  it('answers every format and flag, and passes remote_query to Pipedrive', async () => {
    const raw = await request(app).get(`/unified/crm/stages/1?${q(tokenAccount, '&truto_response_format=raw')}`).set(AUTH);
    expect(raw.body).toMatchObject({ success: true, data: { id: 1, name: 'Lead In' } });
    const normalized = await request(app).get(`/unified/crm/stages/1?${q(tokenAccount, '&truto_response_format=normalized')}`).set(AUTH);
    expect(normalized.body).not.toHaveProperty('remote_data');
    expect(Object.keys(normalized.body)).toEqual(expect.arrayContaining(['id', 'name', 'position', 'status', 'pipeline', 'created_at', 'updated_at']));
    const ignored = await request(app).get(`/unified/crm/stages?${q(tokenAccount, '&truto_ignore_remote_data=true&limit=1')}`).set(AUTH);
    expect(ignored.body.result[0]).not.toHaveProperty('remote_data');
    const excluded = await request(app).get(`/unified/crm/pipelines/1?${q(tokenAccount, '&truto_exclude_fields[]=stages')}`).set(AUTH);
    expect(excluded.body).not.toHaveProperty('stages');
    const created = await request(app).post(`/unified/crm/stages?${q(tokenAccount, '&truto_response_format=raw')}`).set(AUTH).send({ name: 'Raw', pipeline: { id: '1' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ success: true, data: { name: 'Raw', pipeline_id: 1 } });
    const descending = await request(app).get(`/unified/crm/stages?${q(tokenAccount, '&remote_query[sort_direction]=desc&limit=1')}`).set(AUTH);
    expect(descending.body.result[0].name).toBe('Raw');
    expect(sandbox.requests.at(-1)?.query).toContain('sort_direction=desc');
  });

  it('answers 400 for what Pipedrive API v2 cannot do, and the meta endpoint shows Pipedrive\'s rules', async () => {
    const post = (body: unknown) => request(app).post(`/unified/crm/stages?${q(tokenAccount)}`).set(AUTH).send(body as object);
    const position = await post({ name: 'X', pipeline: { id: '1' }, position: 2 });
    expect(position.status).toBe(400);
    expect(position.body.message).toMatch(/position cannot be set on Pipedrive: its API v2 has no writable order_nr/);
    const noPipeline = await post({ name: 'X' });
    expect(noPipeline.status).toBe(400);
    expect(noPipeline.body.truto_error_insight.missing_required_body_fields.value).toEqual(['pipeline']);
    expect((await post({ name: 'X', pipeline: { id: '1' }, remote_data: { colour: 'red' } })).status).toBe(400);
    expect((await request(app).patch(`/unified/crm/stages/1?${q(tokenAccount)}`).set(AUTH).send({ position: 0 })).status).toBe(400);
    expect((await request(app).patch(`/unified/crm/stages/1?${q(tokenAccount)}`).set(AUTH).send({ status: 'inactive' })).status).toBe(400);
    const filter = await request(app).get(`/unified/crm/stages?${q(tokenAccount, '&name=Lead%20In')}`).set(AUTH);
    expect(filter.status).toBe(400);
    expect(filter.body.message).toMatch(/Pipedrive filters by pipeline/);
    expect(sandbox.requests).toHaveLength(0);

    const meta = await request(app).get(`/unified/crm/stages/meta/create?${q(tokenAccount)}`).set(AUTH);
    expect(meta.body).toMatchObject({ integration: 'pipedrive', retry_safe: false });
    expect(meta.body.request_body_schema.required).toEqual(expect.arrayContaining(['name', 'pipeline']));
    expect(meta.body.request_body_schema.properties.position.description).toMatch(/Not accepted/);
    const byName = await request(app).get('/unified/crm/stages/pipedrive/meta/list').set(AUTH);
    expect(Object.keys(byName.body.query_schema.properties)).toContain('pipeline');
    expect(Object.keys(byName.body.query_schema.properties)).not.toContain('name');
  });

  it("mirrors Pipedrive's errors (404, 429), and paces calls to its burst limit instead of meeting its 429 (issue 18)", async () => {
    const missing = await request(app).get(`/unified/crm/stages/999?${q(tokenAccount)}`).set(AUTH);
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ message: 'Stage not found', truto_is_remote_error: true, raw_response: { success: false, error: 'Stage not found' } });

    const limited = await startPipedriveSandbox({ port: 0, contract: true, rateLimit: 1 });
    try {
      const account = await connect({ api_domain: limited.url, api_token: limited.instance.config.apiToken }, false);
      expect((await request(app).get(`/unified/crm/stages/1?${q(account)}`).set(AUTH)).status).toBe(200);
      // One call per 2 s, and a stage get is two (the stage, its pipeline's name): each call waits for the window
      // (x-ratelimit-reset) and is sent once. A refused one would have been sent again: more than four requests.
      expect((await request(app).get(`/unified/crm/stages/1?${q(account)}`).set(AUTH)).status).toBe(200);
      expect(limited.requests).toHaveLength(4);
      // A 429 whose Retry-After is longer than an interactive call waits is mirrored at once.
      limited.injectFault({ method: 'GET', status: 429, retryAfter: 30, times: 1 });
      const over = await request(app).get(`/unified/crm/stages/1?${q(account)}`).set(AUTH);
      expect(over.status).toBe(429);
      expect(over.body).toMatchObject({ truto_is_remote_error: true });
      expect(over.body.truto_error_insight).toHaveProperty('rate_limit_error');
      expect(over.headers['retry-after']).toBe('30');
      expect(limited.takeContractViolations()).toEqual([]);
    } finally {
      await limited.close();
    }
  });

  it('writes a batch through single creates, answering each in order (issue 18: Pipedrive has no bulk stage endpoint)', async () => {
    const items = [
      { method: 'create', body: { name: 'Bulk 1', pipeline: { id: '1' } } },
      { method: 'create', body: { name: 'Bulk 2', pipeline: { id: '1' }, position: 2 } },
      { method: 'create', body: { name: 'Bulk 3', pipeline: { id: '1' } } },
    ];
    const res = await request(app).post(`/unified/crm/stages/batch?${q(tokenAccount)}`).set(AUTH).set('prefer', 'return=minimal').send({ items });
    expect(res.status).toBe(200);
    expect(res.body.result.map((r: { status: number }) => r.status)).toEqual([201, 400, 201]);
    expect(res.body.result[0].result).toEqual({ id: expect.any(String) });
    expect(res.body.result[1].error.message).toMatch(/position/);
    expect(sandbox.requests.filter((r) => r.method === 'POST').map((r) => JSON.parse(r.body ?? '{}').name)).toEqual(expect.arrayContaining(['Bulk 1', 'Bulk 3']));
    expect(sandbox.requests.filter((r) => r.method === 'POST')).toHaveLength(2);
  });

  it('writes once for two batch items with the same idempotency_key, beside invalid items and an unknown update (single creates)', async () => {
    const items = [
      { method: 'create', idempotency_key: 'pd-twin', body: { name: 'Twin', pipeline: { id: '1' } } },
      { method: 'create', body: { pipeline: { id: '1' } } },
      { method: 'update', id: '999999', body: { name: 'Ghost' } },
      { method: 'create', idempotency_key: 'pd-twin', body: { name: 'Twin', pipeline: { id: '1' } } },
    ];
    const res = await request(app).post(`/unified/crm/stages/batch?${q(tokenAccount)}`).set(AUTH).send({ items });
    expect(res.status).toBe(200);
    const statuses = res.body.result.map((r: { status: number }) => r.status);
    expect(statuses.slice(1, 3)).toEqual([400, 404]);
    expect([201, 409]).toContain(statuses[3]);
    expect(sandbox.requests.filter((r) => r.method === 'POST' && JSON.parse(r.body ?? '{}').name === 'Twin')).toHaveLength(1);
  });

  it('finds the stage of a create whose answer was cut off, when retried with the same Idempotency-Key', async () => {
    // A core whose call deadline is 2 s: a retry of an ambiguous create is held off (409) for two deadlines.
    const shortDir = mkdtempSync(join(tmpdir(), 'unicrm-pipedrive-short-'));
    const short = createUnicrmCore({
      env: {},
      logStream: { write: () => undefined },
      config: { dataDir: shortDir, apiToken: TOKEN, logLevel: 'warn', remoteTimeoutMs: 2000, rateLimits: { perToken: 0, perAccount: 0, windowMs: 10_000 } },
    });
    const shortApp = createApp(short);
    try {
      const account = await short.accounts.create('default', { integration: 'pipedrive', tenant_id: 'acme', context: { api_domain: sandbox.url, api_token: sandbox.instance.config.apiToken } });
      await reconcile(shortApp, account.id);
    } finally {
      shortApp.close();
      await short.close();
      rmSync(shortDir, { recursive: true, force: true });
    }
  });

  async function reconcile(app: UnicrmApp, accountId: string) {
    sandbox.reset();
    sandbox.injectFault({ method: 'POST', path: '/api/v2/stages', body: 'truncated', times: 1 });
    const create = () => request(app).post(`/unified/crm/stages?${q(accountId)}`).set(AUTH).set('idempotency-key', 'pd-amb-1').send({ name: 'Cut off', pipeline: { id: '1' } });
    const first = await create();
    expect(first.status).toBe(502);
    const named = () => [...sandbox.instance.store.stages.values()].filter((s) => s.name === 'Cut off');
    expect(named()).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 4100));
    const retry = await create();
    expect(retry.status).toBe(201);
    expect(retry.body).toMatchObject({ id: String(named()[0]?.id), name: 'Cut off', pipeline: { id: '1', name: 'Sales Pipeline' } });
    expect(sandbox.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    expect(named()).toHaveLength(1);
  }

  it('reaches Pipedrive API v2 through the proxy, paged by cursor', async () => {
    const page = await request(app).get(`/proxy/stages?${q(tokenAccount, '&limit=2&pipeline_id=1')}`).set(AUTH);
    expect(page.status).toBe(200);
    expect(page.body.result.map((s: { name: string }) => s.name)).toEqual(['Lead In', 'Contact Made']);
    expect(typeof page.body.next_cursor).toBe('string');
    const one = await request(app).get(`/proxy/pipelines/1?${q(tokenAccount)}`).set(AUTH);
    expect(JSON.parse(one.text)).toMatchObject({ success: true, data: { id: 1, name: 'Sales Pipeline' } });
  });
});

describe('Pipedrive with OAuth: core refreshes the tokens', () => {
  it('refreshes an expired token once for 20 concurrent calls, seals the new tokens, and uses them afterwards', async () => {
    const account = await connect(oauthContext(-60), false);
    const answers = await Promise.all(Array.from({ length: 20 }, () => request(app).get(`/unified/crm/stages?${q(account, '&limit=1')}`).set(AUTH)));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(sandbox.refreshRequests()).toBe(1);
    const shown = await request(app).get(`/integrated-account/${account}`).set(AUTH);
    expect(shown.body.status).toBe('active');
    expect(Date.parse(shown.body.context.expires_at)).toBeGreaterThan(Date.now() + 30 * 60_000);
    expect(shown.body.context).not.toHaveProperty('access_token');
    expect(shown.body.context).not.toHaveProperty('refresh_token');
    expect((await request(app).get(`/unified/crm/pipelines/1?${q(account)}`).set(AUTH)).status).toBe(200);
    expect(sandbox.refreshRequests()).toBe(1);
    const bearer = sandbox.requests.at(-1)?.headers.authorization;
    expect(bearer).toMatch(/^Bearer sandbox-access-/);
  });

  it('refreshes once after a 401 and sends the call again', async () => {
    const context = oauthContext(3600);
    const account = await connect(context, false);
    sandbox.instance.tokens.access.delete(String(context.access_token)); // revoked at Pipedrive before it expired
    const created = await request(app).post(`/unified/crm/stages?${q(account)}`).set(AUTH).send({ name: 'After 401', pipeline: { id: '1' } });
    expect(created.status).toBe(201);
    expect(sandbox.refreshRequests()).toBe(1);
    expect(sandbox.requests.filter((r) => r.method === 'POST' && r.path === '/api/v2/stages').map((r) => r.headers.authorization)).toHaveLength(2);
  });

  it('refreshes a token that expires within the margin (60 s) before the call, and not one that does not', async () => {
    const soon = await connect(oauthContext(30), false);
    expect((await request(app).get(`/unified/crm/stages/1?${q(soon)}`).set(AUTH)).status).toBe(200);
    expect(sandbox.refreshRequests()).toBe(1);
    const later = await connect(oauthContext(600), false);
    expect((await request(app).get(`/unified/crm/stages/1?${q(later)}`).set(AUTH)).status).toBe(200);
    expect(sandbox.refreshRequests()).toBe(1);
  });

  it('answers 502 when the token endpoint fails (5xx), and keeps the account active', async () => {
    const account = await connect(oauthContext(-60), false);
    sandbox.injectFault({ path: '/oauth/token', status: 503, times: 1 });
    const failed = await request(app).get(`/unified/crm/stages/1?${q(account)}`).set(AUTH);
    expect(failed.status).toBe(502);
    expect(failed.body.message).toMatch(/token endpoint answered 503/);
    expect((await request(app).get(`/integrated-account/${account}`).set(AUTH)).body.status).toBe('active');
    expect((await request(app).get(`/unified/crm/stages/1?${q(account)}`).set(AUTH)).status).toBe(200);
  });

  it('marks the account needs_reauth when the refresh is refused, and sends nothing more', async () => {
    const context = oauthContext(-60);
    sandbox.instance.tokens.refresh.delete(String(context.refresh_token));
    const account = await connect(context, false);
    const refused = await request(app).get(`/unified/crm/stages?${q(account)}`).set(AUTH);
    expect(refused.status).toBe(401);
    expect(refused.body.message).toMatch(/Pipedrive refused to refresh the OAuth token \(400 invalid_grant/);
    expect(sandbox.refreshRequests()).toBe(1);
    const shown = await request(app).get(`/integrated-account/${account}`).set(AUTH);
    expect(shown.body).toMatchObject({ status: 'needs_reauth', last_error: expect.stringMatching(/refused to refresh/) });
    const before = sandbox.requests.length;
    expect((await request(app).get(`/unified/crm/stages?${q(account)}`).set(AUTH)).status).toBe(401);
    expect(sandbox.requests.length).toBe(before);
    expect(sandbox.refreshRequests()).toBe(1);
  });
});

describe('the same requests on Pipeliner and Pipedrive', () => {
  let pipeliner: RunningSandbox;
  beforeAll(async () => {
    pipeliner = await startSandbox({ port: 0 });
  });
  afterAll(() => pipeliner.close());

  it('answer a stage of the same unified shape', async () => {
    const res = await request(app).post('/integrated-account').set(AUTH).send({
      integration: 'pipeliner',
      tenant_id: 'acme',
      context: { service_url: pipeliner.serviceUrl, space_id: pipeliner.spaceId, username: pipeliner.username, password: pipeliner.password },
    });
    const pipelinerAccount = res.body.id as string;
    const [pipelinerPipeline] = (await request(app).get(`/unified/crm/pipelines?${q(pipelinerAccount)}`).set(AUTH)).body.result;
    const a = await request(app).post(`/unified/crm/stages?${q(pipelinerAccount, '&truto_ignore_remote_data=true')}`).set(AUTH).send({ name: 'Same', pipeline: { id: pipelinerPipeline.id } });
    const b = await request(app).post(`/unified/crm/stages?${q(tokenAccount, '&truto_ignore_remote_data=true')}`).set(AUTH).send({ name: 'Same', pipeline: { id: '1' } });
    expect(Object.keys(a.body).sort()).toEqual(Object.keys(b.body).sort());
    expect(Object.keys(b.body.pipeline).sort()).toEqual(['id', 'name']);
  });
});
