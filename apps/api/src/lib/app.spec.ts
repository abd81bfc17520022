import { createUnicrmCore, type UnicrmCore } from '@unicrm/core';
import { type RunningSandbox, SANDBOX_SEED_IDS, startSandbox } from '@unicrm/sandboxes';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { createApp, type UnicrmApp } from './app';

const TOKEN = 'test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const SALES = SANDBOX_SEED_IDS.salesPipelineId;
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

let sandbox: RunningSandbox;
let core: UnicrmCore;
let app: UnicrmApp;
let dir: string;
let accountId: string;

async function connect(context: Record<string, unknown> = {}, validate = true): Promise<string> {
  const res = await request(app)
    .post('/integrated-account')
    .set(auth)
    .send({
      integration: 'pipeliner',
      tenant_id: 'acme',
      context: { service_url: sandbox.serviceUrl, space_id: sandbox.spaceId, username: sandbox.username, password: sandbox.password, ...context },
      validate,
    });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

const create = (query: string, body: unknown) =>
  request(app).post(`/unified/crm/stages?integrated_account_id=${accountId}${query}`).set(auth).send(body as object);

const stepPosts = () => sandbox.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/entities/Steps'));

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0, faults: true, contract: true });
  dir = mkdtempSync(join(tmpdir(), 'unicrm-api-'));
  core = createUnicrmCore({
    env: {},
    config: { dataDir: dir, apiToken: TOKEN, logLevel: 'silent', rateLimits: { perToken: 0, perAccount: 0, windowMs: 10_000 } },
  });
  app = createApp(core);
  accountId = await connect();
});

afterAll(async () => {
  await core.close();
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  sandbox.reset();
});
afterEach(() => expect(sandbox.takeContractViolations()).toEqual([]));

describe('POST /unified/crm/stages', () => {
  it('creates a step in the sandbox and answers 201 with all eight unified fields', async () => {
    const res = await create('', { name: 'Contract Sent', pipeline: { id: SALES } });
    expect(res.status).toBe(201);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(Object.keys(res.body)).toEqual(['id', 'name', 'position', 'status', 'pipeline', 'created_at', 'updated_at', 'remote_data']);
    const step = sandbox.steps().find((s) => s.id === res.body.id);
    expect(step).toBeDefined();
    expect(res.body).toEqual({
      id: step?.id,
      name: 'Contract Sent',
      position: step?.sort_order,
      status: 'active',
      pipeline: { id: SALES, name: 'Sales Pipeline' },
      created_at: expect.stringMatching(RFC3339_UTC),
      updated_at: expect.stringMatching(RFC3339_UTC),
      remote_data: step,
    });
    expect(step?.pipeline_id).toBe(SALES);
  });

  it('sends validation-level=8 with the read-only pipeline_id and sort_order, and the position lands', async () => {
    const res = await create('', { name: 'Early', pipeline: { id: SALES }, position: 1 });
    expect(res.status).toBe(201);
    expect(res.body.position).toBe(1);
    const [post] = stepPosts();
    expect(post?.query).toBe('validation-level=8');
    expect(JSON.parse(post?.body ?? '{}')).toEqual({ name: 'Early', pipeline_id: SALES, sort_order: 1 });
  });

  it('answers raw: the Pipeliner envelope, byte for byte, both flags ignored', async () => {
    const res = await create('&truto_response_format=raw&truto_ignore_remote_data=true&truto_exclude_fields[]=data', {
      name: 'Raw',
      pipeline: { id: SALES },
    });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ success: true, data: sandbox.steps().find((s) => s.name === 'Raw') });
    expect(res.text.startsWith('{"success":true,"data":{')).toBe(true);
  });

  it('answers normalized: every field in schema order, nulls, no remote_data', async () => {
    const res = await create('&truto_response_format=normalized', { name: 'Loose' });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body)).toEqual(['id', 'name', 'position', 'status', 'pipeline', 'created_at', 'updated_at']);
    expect(res.body.pipeline).toBeNull();
  });

  it('honours truto_ignore_remote_data and truto_exclude_fields (TS SDK indices encoding, dot paths)', async () => {
    const res = await create(
      '&truto_ignore_remote_data=TRUE&truto_exclude_fields%5B0%5D=id&truto_exclude_fields%5B1%5D=pipeline.name',
      { name: 'Slim', pipeline: { id: SALES } },
    );
    expect(res.status).toBe(201);
    expect(res.body).not.toHaveProperty('remote_data');
    expect(res.body).not.toHaveProperty('id');
    expect(res.body.pipeline).toEqual({ id: SALES });
  });

  it('passes remote_query to Pipeliner as-is', async () => {
    const res = await create('&remote_query[expand]=pipeline', { name: 'Expanded', pipeline: { id: SALES } });
    expect(res.status).toBe(201);
    expect(stepPosts()[0]?.query).toBe('validation-level=8&expand=pipeline');
    expect(res.body.pipeline).toEqual({ id: SALES, name: 'Sales Pipeline' });
    expect(sandbox.requests.filter((r) => r.method === 'GET')).toHaveLength(0);
  });

  it('deep-merges remote_data into the body Pipeliner receives', async () => {
    const res = await create('', { name: 'Closed Won', remote_data: { percent: 100, description: 'Signed', name: 'Closed Won' } });
    expect(res.status).toBe(201);
    expect(JSON.parse(stepPosts()[0]?.body ?? '{}')).toEqual({ name: 'Closed Won', percent: 100, description: 'Signed' });
    expect(res.body.name).toBe('Closed Won');
    expect(res.body.remote_data).toMatchObject({ percent: 100, description: 'Signed' });
  });

  it.each([
    ['missing', '/unified/crm/stages', 400, 'integrated_account_id'],
    ['not a UUID', '/unified/crm/stages?integrated_account_id=nope', 400, 'integrated_account_id'],
  ])('answers 400 when integrated_account_id is %s', async (_case, path, status, field) => {
    const res = await request(app).post(path).set(auth).send({ name: 'x' });
    expect(res.status).toBe(status);
    expect(res.body.details.failures[0].path).toBe(field);
    expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
  });

  it('answers 404 for an unknown integrated account', async () => {
    const res = await request(app)
      .post('/unified/crm/stages?integrated_account_id=62f44730-dd91-461e-bd6a-aedd9e0ad79d')
      .set(auth)
      .send({ name: 'x' });
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ statusCode: 404, error: 'Not Found', message: 'Integrated account 62f44730-dd91-461e-bd6a-aedd9e0ad79d not found.' });
  });

  it('answers 400 naming name when it is missing, without calling Pipeliner', async () => {
    const res = await create('', { position: 2 });
    expect(res.status).toBe(400);
    expect(res.body.details.failures).toEqual([{ path: 'name', message: 'is required for Pipeliner (a non-empty string)' }]);
    expect(res.body.truto_error_insight.missing_required_body_fields.value).toEqual(['name']);
    expect(sandbox.requests).toHaveLength(0);
  });

  it.each([
    ['no token', {}],
    ['a wrong token', { authorization: 'Bearer wrong' }],
    ['another scheme', { authorization: `Basic ${TOKEN}` }],
  ])('answers 401 with %s', async (_case, headers) => {
    const res = await request(app).post(`/unified/crm/stages?integrated_account_id=${accountId}`).set(headers).send({ name: 'x' });
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
    expect(sandbox.requests).toHaveLength(0);
  });

  it('mirrors a Pipeliner 422 as a remote error with its body', async () => {
    const res = await create('', { name: 'Orphan', pipeline: { id: '99999999-9999-4999-8999-999999999999' } });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ statusCode: 422, error: 'Unprocessable Entity', truto_is_remote_error: true });
    expect(res.body.raw_response).toMatchObject({ success: false, http_status: 422, code: 40000 });
    expect(res.body.message).not.toMatch(/^\n/);
  });

  it('mirrors a Pipeliner 500 and forwards Retry-After of a 503', async () => {
    sandbox.injectFault({ method: 'POST', path: '/entities/Steps', status: 503, retryAfter: 7, times: 1 });
    const res = await create('', { name: 'Busy' });
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('7');
    expect(res.body.truto_is_remote_error).toBe(true);
  });

  it('answers 502 for a malformed Pipeliner answer', async () => {
    sandbox.injectFault({ method: 'POST', path: '/entities/Steps', body: 'malformed', times: 1 });
    const res = await create('', { name: 'Broken' });
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ statusCode: 502, truto_is_remote_error: true });
  });

  it('marks the account needs_reauth when Pipeliner rejects its credentials', async () => {
    const id = await connect({ password: 'wrong' }, false);
    const first = await request(app).post(`/unified/crm/stages?integrated_account_id=${id}`).set(auth).send({ name: 'x' });
    expect(first.status).toBe(401);
    expect(first.body.truto_is_remote_error).toBe(true);
    expect(first.headers['www-authenticate']).toBeUndefined();
    const account = await request(app).get(`/integrated-account/${id}`).set(auth);
    expect(account.body.status).toBe('needs_reauth');
    const patched = await request(app).patch(`/integrated-account/${id}`).set(auth).send({ context: { password: sandbox.password } });
    expect(patched.body.status).toBe('active');
    const again = await request(app).post(`/unified/crm/stages?integrated_account_id=${id}`).set(auth).send({ name: 'x' });
    expect(again.status).toBe(201);
  });

  it.each([
    ['invalid JSON', 'application/json', '{"name":', 400],
    ['a JSON string', 'application/json', '"name"', 400],
    ['a JSON array', 'application/json', '[]', 400],
    ['text', 'text/plain', 'name=x', 415],
    ['an empty body', 'application/json', '', 400],
  ])('answers %s with a clear 4xx', async (_case, type, payload, status) => {
    const res = await request(app)
      .post(`/unified/crm/stages?integrated_account_id=${accountId}`)
      .set(auth)
      .set('content-type', type)
      .send(payload);
    expect(res.status).toBe(status);
    expect(res.body).toMatchObject({ statusCode: status, message: expect.any(String) });
    expect(JSON.stringify(res.body)).not.toMatch(/at \w+ \(/);
  });

  it('answers 413 over 1 MiB', async () => {
    const res = await create('', { name: 'Big', remote_data: { description: 'x'.repeat(1024 * 1024) } });
    expect(res.status).toBe(413);
    expect(res.body.error).toBe('Payload Too Large');
  });
});

describe('integrated accounts', () => {
  it('creates, gets and deletes an account, never showing its secrets', async () => {
    const id = await connect();
    const got = await request(app).get(`/integrated-account/${id}`).set(auth);
    expect(got.status).toBe(200);
    expect(got.body.context).toEqual({ service_url: sandbox.serviceUrl, space_id: sandbox.spaceId });
    expect(JSON.stringify(got.body)).not.toContain(sandbox.password);
    const deleted = await request(app).delete(`/integrated-account/${id}`).set(auth);
    expect(deleted.body).toEqual({ id });
    expect((await request(app).get(`/integrated-account/${id}`).set(auth)).status).toBe(404);
  });

  it('answers 400 naming the fields of a bad account', async () => {
    const res = await request(app)
      .post('/integrated-account')
      .set(auth)
      .send({ integration: 'pipeliner', tenant_id: 'acme', context: { service_url: 'http://example.com', space_id: 's' } });
    expect(res.status).toBe(400);
    expect(res.body.details.failures.map((f: { path: string }) => f.path).sort()).toEqual([
      'context.password',
      'context.username',
    ]);
  });
});

describe('service routes', () => {
  it('serves /health without a token', async () => {
    const res = await request(app).get('/health');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  it('serves the OpenAPI 3.1 document', async () => {
    const res = await request(app).get('/openapi.json').set(auth);
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    expect(res.body.paths['/unified/crm/stages'].post.operationId).toBe('createStage');
    expect(res.body.paths['/unified/crm/stages'].get.operationId).toBe('listStages');
  });

  it('answers unknown routes and methods in the error shape', async () => {
    const missing = await request(app).get('/nope').set(auth);
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ statusCode: 404, error: 'Not Found' });
    const wrong = await request(app).put('/unified/crm/stages').set(auth);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe('GET, POST');
  });
});
