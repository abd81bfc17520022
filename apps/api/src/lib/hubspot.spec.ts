import { createUnicrmCore, type UnicrmCore } from '@unicrm/core';
import {
  formatContractViolation,
  type RunningHubSpotSandbox,
  type RunningPipedriveSandbox,
  type RunningSandbox,
  startHubSpotSandbox,
  startPipedriveSandbox,
  startSandbox,
} from '@unicrm/sandboxes';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { createApp, type UnicrmApp } from './app';

// HubSpot through the real app, against the HubSpot sandbox (contract-checked) on an ephemeral port: a private app's
// token and OAuth, the stage lifecycle (created, moved by displayOrder, archived, listed with and without archived
// stages, restored), tickets through remote_query[object_type], formats, the 400s for what HubSpot cannot do, its
// errors and rate-limit headers, an idempotent create reconciled, and core's OAuth refresh (one for 20 calls).
const TOKEN = 'hubspot-test-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
let sandbox: RunningHubSpotSandbox;
let core: UnicrmCore;
let app: UnicrmApp;
let dir: string;
let tokenAccount: string;

async function connect(context: Record<string, unknown>, validate = true): Promise<string> {
  const res = await request(app).post('/integrated-account').set(AUTH).send({ integration: 'hubspot', tenant_id: 'acme', context, validate });
  if (res.status !== 201) throw new Error(`could not connect: ${res.status} ${res.text}`);
  return res.body.id as string;
}

function oauthContext(seconds: number): Record<string, unknown> {
  const issued = sandbox.issueTokens(seconds);
  return {
    api_base_url: sandbox.url,
    access_token: issued.access_token,
    refresh_token: issued.refresh_token,
    expires_at: issued.expires_at,
    client_id: sandbox.instance.config.clientId,
    client_secret: sandbox.instance.config.clientSecret,
  };
}

const q = (account: string, extra = '') => `integrated_account_id=${account}${extra}`;
const names = (body: { result: Array<{ name: string }> }) => body.result.map((s) => s.name);

beforeAll(async () => {
  sandbox = await startHubSpotSandbox({ port: 0, contract: true });
  dir = mkdtempSync(join(tmpdir(), 'unicrm-hubspot-'));
  core = createUnicrmCore({
    env: {},
    logStream: { write: () => undefined },
    config: { dataDir: dir, apiToken: TOKEN, logLevel: 'warn', rateLimits: { perToken: 0, perAccount: 0, windowMs: 10_000 } },
  });
  app = createApp(core);
  tokenAccount = await connect({ api_base_url: sandbox.url, access_token: sandbox.instance.config.accessToken });
});
beforeEach(() => sandbox.reset());
afterEach(() => expect(sandbox.takeContractViolations().map(formatContractViolation)).toEqual([]));
afterAll(async () => {
  app.close();
  await core.close();
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("HubSpot with a private app's token", () => {
  it('creates a stage, moves it (displayOrder), archives it, lists with and without archived stages, restores it', async () => {
    const pipelines = await request(app).get(`/unified/crm/pipelines?${q(tokenAccount)}`).set(AUTH);
    expect(pipelines.status).toBe(200);
    expect(pipelines.body.result[0]).toMatchObject({ id: 'default', name: 'Sales Pipeline', entity: 'opportunity' });
    expect(pipelines.body.result[0].stages).toHaveLength(7);
    expect(pipelines.body.result[0]).not.toHaveProperty('created_at'); // HubSpot's epoch: unknown

    const created = await request(app).post(`/unified/crm/stages?${q(tokenAccount)}`).set(AUTH).send({ name: 'Negotiation', pipeline: { id: 'default' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'Negotiation', position: 7, status: 'active', pipeline: { id: 'default', name: 'Sales Pipeline' },
      remote_data: { label: 'Negotiation', displayOrder: 7, metadata: { probability: '0.5' }, archived: false },
    });
    expect(created.body.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    const id = created.body.id as string;
    const post = sandbox.requests.find((r) => r.method === 'POST');
    expect(post?.headers.authorization).toBe(`Bearer ${sandbox.instance.config.accessToken}`);
    expect(JSON.parse(post?.body ?? '')).toEqual({ label: 'Negotiation', displayOrder: 7, metadata: { probability: '0.5' } });

    const moved = await request(app).patch(`/unified/crm/stages/${id}?${q(tokenAccount)}`).set(AUTH).send({ position: 1 });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ id, position: 1, status: 'active', pipeline: { id: 'default', name: 'Sales Pipeline' } });
    const patch = sandbox.requests.find((r) => r.method === 'PATCH');
    expect(JSON.parse(patch?.body ?? '')).toEqual({ displayOrder: 1, metadata: { probability: '0.5' } });
    const ordered = await request(app).get(`/unified/crm/stages?${q(tokenAccount, '&pipeline[id]=default&limit=3')}`).set(AUTH);
    expect(names(ordered.body)).toEqual(['Appointment Scheduled', 'Negotiation', 'Qualified To Buy']);
    expect(typeof ordered.body.next_cursor).toBe('string');
    const second = await request(app).get(`/unified/crm/stages?${q(tokenAccount, `&pipeline[id]=default&limit=3&next_cursor=${encodeURIComponent(ordered.body.next_cursor)}`)}`).set(AUTH);
    expect(names(second.body)).toEqual(['Presentation Scheduled', 'Decision Maker Bought-In', 'Contract Sent']);
    expect(typeof second.body.prev_cursor).toBe('string');

    const archived = await request(app).delete(`/unified/crm/stages/${id}?${q(tokenAccount)}`).set(AUTH);
    expect(archived.status).toBe(200);
    expect(archived.body).toMatchObject({ id, name: 'Negotiation', status: 'inactive', remote_data: { archived: true, archivedAt: expect.any(String) } });
    expect(sandbox.requests.filter((r) => r.method === 'DELETE').map((r) => r.path)).toEqual([`/crm/v3/pipelines/deals/default/stages/${id}`]);

    const active = await request(app).get(`/unified/crm/stages?${q(tokenAccount, '&limit=100')}`).set(AUTH);
    expect(active.body.result_count).toBe(7);
    expect(names(active.body)).not.toContain('Negotiation');
    const withArchived = await request(app).get(`/unified/crm/stages?${q(tokenAccount, '&status=inactive')}`).set(AUTH);
    expect(withArchived.body.result).toEqual([expect.objectContaining({ id, name: 'Negotiation', status: 'inactive', position: 1 })]);
    expect((await request(app).get(`/unified/crm/stages/${id}?${q(tokenAccount)}`).set(AUTH)).body.status).toBe('inactive');
    const again = await request(app).delete(`/unified/crm/stages/${id}?${q(tokenAccount)}`).set(AUTH);
    expect(again.status).toBe(404);

    const restored = await request(app).patch(`/unified/crm/stages/${id}?${q(tokenAccount)}`).set(AUTH).send({ status: 'active' });
    expect(restored.body).toMatchObject({ id, status: 'active' });
    expect(names((await request(app).get(`/unified/crm/stages?${q(tokenAccount)}`).set(AUTH)).body)).toContain('Negotiation');
  });

  it("finds a stage by its id alone, and by remote_query[pipeline_id]; sets the deal probability through remote_data; serves tickets' stages", async () => {
    const got = await request(app).get(`/unified/crm/stages/closedwon?${q(tokenAccount)}`).set(AUTH);
    expect(got.body).toMatchObject({ id: 'closedwon', name: 'Closed Won', position: 5, status: 'active', pipeline: { id: 'default', name: 'Sales Pipeline' } });
    expect(got.body).not.toHaveProperty('created_at');
    expect(sandbox.requests.map((r) => r.path)).toEqual(['/crm/v3/pipelines/deals']);
    const direct = await request(app).get(`/unified/crm/stages/closedwon?${q(tokenAccount, '&remote_query[pipeline_id]=default')}`).set(AUTH);
    expect(direct.body).toMatchObject({ id: 'closedwon', pipeline: { id: 'default', name: 'Sales Pipeline' } });
    const raw = await request(app).get(`/unified/crm/stages/closedwon?${q(tokenAccount, '&truto_response_format=raw')}`).set(AUTH);
    expect(raw.body).toMatchObject({ id: 'closedwon', label: 'Closed Won', metadata: { probability: '1.0' } });

    const likely = await request(app).post(`/unified/crm/stages?${q(tokenAccount)}`).set(AUTH).send({ name: 'Verbal yes', pipeline: { id: 'default' }, position: 4, remote_data: { metadata: { probability: 0.9 } } });
    expect(likely.body).toMatchObject({ position: 4, remote_data: { metadata: { probability: '0.9' } } });

    const tickets = `&remote_query[object_type]=tickets`;
    const ticketPipelines = await request(app).get(`/unified/crm/pipelines?${q(tokenAccount, tickets)}`).set(AUTH);
    expect(ticketPipelines.body.result[0]).toMatchObject({ id: '0', name: 'Support Pipeline' });
    expect(ticketPipelines.body.result[0]).not.toHaveProperty('entity');
    const ticketStage = await request(app).post(`/unified/crm/stages?${q(tokenAccount, tickets)}`).set(AUTH).send({ name: 'Escalated', pipeline: { id: '0' }, remote_data: { metadata: { ticketState: 'OPEN' } } });
    expect(ticketStage.status).toBe(201);
    expect(ticketStage.body).toMatchObject({ name: 'Escalated', position: 4, remote_data: { metadata: { ticketState: 'OPEN' } } });
    expect(sandbox.requests.at(-1)?.path).toBe('/crm/v3/pipelines/tickets/0/stages');
    expect((await request(app).get(`/unified/crm/stages/${ticketStage.body.id}?${q(tokenAccount, tickets)}`).set(AUTH)).body.name).toBe('Escalated');
    expect((await request(app).get(`/unified/crm/stages/${ticketStage.body.id}?${q(tokenAccount)}`).set(AUTH)).status).toBe(404);

    // remote_query keys other than object_type and pipeline_id go to HubSpot with the write, not with the lookup before it.
    sandbox.requests.length = 0;
    const archived = await request(app).delete(`/unified/crm/stages/${ticketStage.body.id}?${q(tokenAccount, `${tickets}&remote_query[validateReferencesBeforeDelete]=true`)}`).set(AUTH);
    expect(archived.body).toMatchObject({ id: ticketStage.body.id, status: 'inactive' });
    expect(sandbox.requests.map((r) => `${r.method} ${r.path}${r.query ? `?${r.query}` : ''}`)).toEqual([
      'GET /crm/v3/pipelines/tickets',
      `DELETE /crm/v3/pipelines/tickets/0/stages/${ticketStage.body.id}?validateReferencesBeforeDelete=true`,
      `GET /crm/v3/pipelines/tickets/0/stages/${ticketStage.body.id}`,
    ]);
  });

  it("answers 400 for what HubSpot cannot do, before any call; the meta endpoint shows HubSpot's rules", async () => {
    const post = (body: unknown) => request(app).post(`/unified/crm/stages?${q(tokenAccount)}`).set(AUTH).send(body as object);
    const noPipeline = await post({ name: 'X' });
    expect(noPipeline.status).toBe(400);
    expect(noPipeline.body.truto_error_insight.missing_required_body_fields.value).toEqual(['pipeline']);
    expect((await post({ name: 'X', pipeline: { id: 'default' }, remote_data: { colour: 'red' } })).status).toBe(400);
    expect((await post({ name: 'X', pipeline: { id: 'default' }, remote_data: { metadata: { probability: '0.55' } } })).body.message).toMatch(/probability/);
    expect((await request(app).get(`/unified/crm/stages?${q(tokenAccount, '&remote_query[object_type]=a%2Fb')}`).set(AUTH)).status).toBe(400);
    expect(sandbox.requests).toHaveLength(0);
    const move = await request(app).patch(`/unified/crm/stages/closedwon?${q(tokenAccount)}`).set(AUTH).send({ pipeline: { id: 'other' } });
    expect(move.status).toBe(400);
    expect(move.body.message).toMatch(/cannot move a stage to another pipeline/);

    const meta = await request(app).get(`/unified/crm/stages/meta/create?${q(tokenAccount)}`).set(AUTH);
    expect(meta.body).toMatchObject({ integration: 'hubspot', retry_safe: false });
    expect(meta.body.request_body_schema.required).toEqual(expect.arrayContaining(['name', 'pipeline']));
    const byName = await request(app).get('/unified/crm/stages/hubspot/meta/list').set(AUTH);
    expect(Object.keys(byName.body.query_schema.properties)).toEqual(expect.arrayContaining(['pipeline', 'name', 'status', 'created_at', 'updated_at']));
  });

  it("mirrors HubSpot's errors (category, correlationId, errors[]) and forwards its rate-limit headers on a 429", async () => {
    const duplicate = await request(app).post(`/unified/crm/stages?${q(tokenAccount)}`).set(AUTH).send({ name: 'Closed Won', pipeline: { id: 'default' } });
    expect(duplicate.status).toBe(400);
    expect(duplicate.body).toMatchObject({
      message: expect.stringMatching(/already exists/),
      truto_is_remote_error: true,
      raw_response: { status: 'error', category: 'VALIDATION_ERROR', correlationId: expect.any(String) },
      truto_error_insight: { remote_error: { value: { category: 'VALIDATION_ERROR' } }, validation_error: { value: [{ in: 'label' }] } },
    });
    expect(duplicate.headers['x-hubspot-correlation-id']).toMatch(/^[0-9a-f-]{36}$/);
    const missingPipeline = await request(app).get(`/unified/crm/pipelines/nope?${q(tokenAccount)}`).set(AUTH);
    expect(missingPipeline).toMatchObject({ status: 404, body: { truto_is_remote_error: true, raw_response: { category: 'OBJECT_NOT_FOUND' } } });

    const limited = await startHubSpotSandbox({ port: 0, contract: true, rateLimit: 1 });
    try {
      const account = await connect({ api_base_url: limited.url, access_token: limited.instance.config.accessToken }, false);
      // Another client of the same private app spends the window: unicrm's first call meets HubSpot's 429.
      const other = await fetch(`${limited.url}/crm/v3/pipelines/deals`, { headers: { authorization: `Bearer ${limited.instance.config.accessToken}` } });
      expect(other.status).toBe(200);
      const over = await request(app).get(`/unified/crm/stages/closedwon?${q(account)}`).set(AUTH);
      expect(over.status).toBe(429);
      expect(over.body).toMatchObject({ truto_is_remote_error: true, raw_response: { policyName: 'TEN_SECONDLY_ROLLING' } });
      expect(over.body.truto_error_insight.rate_limit_error.value).toBe('TEN_SECONDLY_ROLLING');
      expect(over.headers['x-hubspot-ratelimit-max']).toBe('1');
      expect(over.headers['x-hubspot-ratelimit-remaining']).toBe('0');
      expect(over.headers['x-hubspot-ratelimit-interval-milliseconds']).toBe('10000');
      expect(Number(over.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      // Now unicrm's pacing knows the window is spent (issue 18): the next call is answered 429 with Retry-After at
      // once, without reaching HubSpot.
      const sent = limited.requests.length;
      const paced = await request(app).get(`/unified/crm/stages/closedwon?${q(account)}`).set(AUTH);
      expect(paced.status).toBe(429);
      expect(Number(paced.headers['retry-after'])).toBeGreaterThan(5);
      expect(paced.body.truto_is_remote_error).toBeUndefined();
      expect(limited.requests.length).toBe(sent);
      expect(limited.takeContractViolations()).toEqual([]);
    } finally {
      await limited.close();
    }
  });

  it('creates a batch of stages with one pipeline read and consecutive display orders (issue 18)', async () => {
    const items = ['Batch 1', 'Batch 2', 'Batch 3'].map((name) => ({ method: 'create', body: { name, pipeline: { id: 'default' } } }));
    items.push({ method: 'create', body: { name: 'Closed Won', pipeline: { id: 'default' } } });
    const res = await request(app).post(`/unified/crm/stages/batch?${q(tokenAccount)}`).set(AUTH).send({ items });
    expect(res.status).toBe(200);
    expect(res.body.result.slice(0, 3).map((r: { status: number; result: { name: string; position: number } }) => [r.status, r.result.name, r.result.position])).toEqual([
      [201, 'Batch 1', 7],
      [201, 'Batch 2', 8],
      [201, 'Batch 3', 9],
    ]);
    expect(res.body.result[3]).toMatchObject({ status: 400, error: { truto_is_remote_error: true, message: expect.stringMatching(/already exists/) } });
    expect(sandbox.requests.filter((r) => r.method === 'GET')).toHaveLength(1);
    expect(sandbox.requests.filter((r) => r.method === 'POST')).toHaveLength(4);
  });

  it('writes 100 batch items under the rate limit with no 429, answering a missing pipeline and given positions per item', async () => {
    const limited = await startHubSpotSandbox({ port: 0, contract: true, rateLimit: true });
    try {
      const account = await connect({ api_base_url: limited.url, access_token: limited.instance.config.accessToken }, false);
      const items = Array.from({ length: 100 }, (_, n) => ({
        method: 'create',
        body: { name: `Paced ${n}`, pipeline: { id: n % 10 === 3 ? 'nope' : 'default' }, ...(n % 10 === 5 && { position: 50 + n }) },
      }));
      const res = await request(app).post(`/unified/crm/stages/batch?${q(account)}`).set(AUTH).set('prefer', 'return=minimal').send({ items });
      expect(res.status).toBe(200);
      const statuses = res.body.result.map((r: { status: number }) => r.status);
      expect(statuses.filter((s: number, n: number) => (n % 10 === 3 ? s !== 404 : s !== 201))).toEqual([]);
      expect(limited.rateLimits.snapshot()).toMatchObject({ refused: 0 });
      const stages = await request(app).get(`/unified/crm/stages?${q(account, '&pipeline[id]=default&limit=200')}`).set(AUTH);
      const positions = new Map(stages.body.result.map((s: { name: string; position: number }) => [s.name, s.position]));
      expect(positions.get('Paced 15')).toBe(65);
      expect(positions.get('Paced 0')).toBe(7);
      expect(limited.takeContractViolations()).toEqual([]);
    } finally {
      await limited.close();
    }
  }, 60_000);

  it('finds the stage of a create whose answer was cut off, when retried with the same Idempotency-Key', async () => {
    const shortDir = mkdtempSync(join(tmpdir(), 'unicrm-hubspot-short-'));
    const short = createUnicrmCore({
      env: {},
      logStream: { write: () => undefined },
      config: { dataDir: shortDir, apiToken: TOKEN, logLevel: 'warn', remoteTimeoutMs: 2000, rateLimits: { perToken: 0, perAccount: 0, windowMs: 10_000 } },
    });
    const shortApp = createApp(short);
    try {
      const account = await short.accounts.create('default', { integration: 'hubspot', tenant_id: 'acme', context: { api_base_url: sandbox.url, access_token: sandbox.instance.config.accessToken } });
      sandbox.reset();
      sandbox.injectFault({ method: 'POST', path: '/stages', body: 'truncated', times: 1 });
      const create = () => request(shortApp).post(`/unified/crm/stages?${q(account.id)}`).set(AUTH).set('idempotency-key', 'hs-amb-1').send({ name: 'Cut off', pipeline: { id: 'default' } });
      expect((await create()).status).toBe(502);
      const named = () => sandbox.instance.store.pipelines.get('deals')?.[0]?.stages.filter((s) => s.label === 'Cut off') ?? [];
      expect(named()).toHaveLength(1);
      await new Promise((resolve) => setTimeout(resolve, 4100));
      const retry = await create();
      expect(retry.status).toBe(201);
      expect(retry.body).toMatchObject({ id: named()[0]?.id, name: 'Cut off', pipeline: { id: 'default', name: 'Sales Pipeline' } });
      expect(sandbox.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    } finally {
      shortApp.close();
      await short.close();
      rmSync(shortDir, { recursive: true, force: true });
    }
  });

  it("is offered on the connect page: a form with the private app's token as a password field, its label and where to find it", async () => {
    const link = (await request(app).post('/link-token').set(AUTH).send({ tenant_id: 'connect-co' })).body as { link_token: string };
    const choose = await request(app).get(`/connect?link_token=${link.link_token}`);
    expect(choose.text).toContain('value="hubspot">HubSpot</button>');
    const form = await request(app).get(`/connect?link_token=${link.link_token}&integration=hubspot`);
    expect(form.text).toContain('<label for="f-access_token">Private app access token</label>');
    expect(form.text).toMatch(/<input id="f-access_token" name="ctx_access_token" type="password"/);
    expect(form.text).toContain('Private Apps');
  });

  it('reaches the Pipelines API through the proxy', async () => {
    const list = await request(app).get(`/proxy/deals?${q(tokenAccount)}`).set(AUTH);
    expect(list.status).toBe(200);
    expect(list.body.result[0]).toMatchObject({ id: 'default', label: 'Sales Pipeline' });
    const one = await request(app).get(`/proxy/tickets/0?${q(tokenAccount)}`).set(AUTH);
    expect(JSON.parse(one.text)).toMatchObject({ id: '0', label: 'Support Pipeline' });
  });
});

describe('HubSpot with OAuth: core refreshes the tokens', () => {
  it('refreshes an expired token once for 20 concurrent calls, seals the new tokens, and uses them afterwards', async () => {
    const account = await connect(oauthContext(-60), false);
    const answers = await Promise.all(Array.from({ length: 20 }, () => request(app).get(`/unified/crm/stages?${q(account, '&limit=1')}`).set(AUTH)));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(sandbox.refreshRequests()).toBe(1);
    const refresh = sandbox.requests.filter((r) => r.path === '/oauth/v1/token');
    expect(new URLSearchParams(refresh[0]?.body).get('client_id')).toBe(sandbox.instance.config.clientId);
    const shown = await request(app).get(`/integrated-account/${account}`).set(AUTH);
    expect(shown.body.status).toBe('active');
    expect(Date.parse(shown.body.context.expires_at)).toBeGreaterThan(Date.now() + 20 * 60_000);
    expect(shown.body.context).not.toHaveProperty('access_token');
    expect((await request(app).get(`/unified/crm/pipelines/default?${q(account)}`).set(AUTH)).status).toBe(200);
    expect(sandbox.refreshRequests()).toBe(1);
    expect(sandbox.requests.at(-1)?.headers.authorization).toMatch(/^Bearer sandbox-hubspot-access-/);
  });

  it('refreshes once after a 401 and sends the call again', async () => {
    const context = oauthContext(1800);
    const account = await connect(context, false);
    sandbox.instance.tokens.access.delete(String(context.access_token));
    const created = await request(app).post(`/unified/crm/stages?${q(account)}`).set(AUTH).send({ name: 'After 401', pipeline: { id: 'default' } });
    expect(created.status).toBe(201);
    expect(sandbox.refreshRequests()).toBe(1);
  });

  it('refreshes once after a 401 in a batch and writes its stages, as a single create does', async () => {
    const context = oauthContext(1800);
    const account = await connect(context, false);
    sandbox.instance.tokens.access.delete(String(context.access_token));
    const items = ['Batch after 401 a', 'Batch after 401 b'].map((name) => ({ method: 'create', body: { name, pipeline: { id: 'default' } } }));
    const res = await request(app).post(`/unified/crm/stages/batch?${q(account)}`).set(AUTH).send({ items });
    expect(res.status).toBe(200);
    expect(res.body.result.map((r: { status: number }) => r.status)).toEqual([201, 201]);
    expect(sandbox.refreshRequests()).toBe(1);
    expect((await request(app).get(`/integrated-account/${account}`).set(AUTH)).body.status).toBe('active');
  });

  it("marks a private app's account needs_reauth when a batch's pipeline read answers 401, and answers each item 401", async () => {
    const account = await connect({ api_base_url: sandbox.url, access_token: sandbox.instance.config.accessToken });
    sandbox.injectFault({ method: 'GET', path: '/pipelines/deals/default', status: 401, times: 1 });
    const items = ['Refused a', 'Refused b'].map((name) => ({ method: 'create', body: { name, pipeline: { id: 'default' } } }));
    const res = await request(app).post(`/unified/crm/stages/batch?${q(account)}`).set(AUTH).send({ items });
    expect(res.status).toBe(200);
    expect(res.body.result.map((r: { status: number }) => r.status)).toEqual([401, 401]);
    expect((await request(app).get(`/integrated-account/${account}`).set(AUTH)).body.status).toBe('needs_reauth');
    expect(sandbox.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
  });

  it('marks the account needs_reauth when the refresh is refused (BAD_REFRESH_TOKEN)', async () => {
    const context = oauthContext(-60);
    sandbox.instance.tokens.refresh.delete(String(context.refresh_token));
    const account = await connect(context, false);
    const refused = await request(app).get(`/unified/crm/stages?${q(account)}`).set(AUTH);
    expect(refused.status).toBe(401);
    expect(refused.body.message).toMatch(/HubSpot refused to refresh the OAuth token \(400 missing or unknown refresh token/);
    expect((await request(app).get(`/integrated-account/${account}`).set(AUTH)).body.status).toBe('needs_reauth');
  });
});

describe('the same unified create on Pipeliner, Pipedrive and HubSpot', () => {
  let pipeliner: RunningSandbox;
  let pipedrive: RunningPipedriveSandbox;
  beforeAll(async () => {
    pipeliner = await startSandbox({ port: 0 });
    pipedrive = await startPipedriveSandbox({ port: 0 });
  });
  afterAll(async () => {
    await pipeliner.close();
    await pipedrive.close();
  });

  it('answers stages of the same shape', async () => {
    const add = async (integration: string, context: Record<string, unknown>) =>
      (await request(app).post('/integrated-account').set(AUTH).send({ integration, tenant_id: 'acme', context })).body.id as string;
    const accounts = {
      pipeliner: await add('pipeliner', { service_url: pipeliner.serviceUrl, space_id: pipeliner.spaceId, username: pipeliner.username, password: pipeliner.password }),
      pipedrive: await add('pipedrive', { api_domain: pipedrive.url, api_token: pipedrive.instance.config.apiToken }),
      hubspot: tokenAccount,
    };
    const answers: Record<string, Record<string, unknown>> = {};
    for (const [integration, account] of Object.entries(accounts)) {
      const [pipeline] = (await request(app).get(`/unified/crm/pipelines?${q(account)}`).set(AUTH)).body.result;
      const body = { name: 'Same everywhere', pipeline: { id: pipeline.id } };
      const created = await request(app).post(`/unified/crm/stages?${q(account, '&truto_ignore_remote_data=true')}`).set(AUTH).send(body);
      expect(created.status).toBe(201);
      answers[integration] = created.body;
    }
    const shape = (body: Record<string, unknown>) => Object.fromEntries(Object.entries(body).map(([key, value]) => [key, typeof value === 'object' && value !== null ? Object.keys(value).sort() : typeof value]));
    expect(shape(answers.pipedrive as Record<string, unknown>)).toEqual(shape(answers.pipeliner as Record<string, unknown>));
    expect(shape(answers.hubspot as Record<string, unknown>)).toEqual(shape(answers.pipeliner as Record<string, unknown>));
    expect(shape(answers.hubspot as Record<string, unknown>)).toEqual({
      id: 'string', name: 'string', position: 'number', status: 'string', pipeline: ['id', 'name'], created_at: 'string', updated_at: 'string',
    });
  });
});
