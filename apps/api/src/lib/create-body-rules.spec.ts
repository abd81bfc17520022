import { SANDBOX_SEED_IDS } from '@unicrm/sandboxes';
import request from 'supertest';
import { AUTH, type Harness, startHarness } from '../testing/harness';

// Issue 12, items 12 and 13, through the HTTP API and the sandbox: a create whose answer leaves the pipeline out
// is not a false 502, and bodies that contradict themselves or that Pipeliner cannot hold are 400s before any call.
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());
beforeEach(() => h.sandbox.reset());
afterEach(() => expect(h.sandbox.takeContractViolations()).toEqual([]));

const SALES = SANDBOX_SEED_IDS.salesPipelineId;
const RENEWALS = SANDBOX_SEED_IDS.renewalsPipelineId;
const create = (query: string, body: unknown) =>
  request(h.app)
    .post(`/unified/crm/stages?integrated_account_id=${h.accountId}${query}`)
    .set(AUTH)
    .set('content-type', 'application/json')
    .send(typeof body === 'string' ? body : JSON.stringify(body));
const named = (name: string) => h.sandbox.steps().filter((s) => s.name === name);
const calls = () => h.sandbox.requests.map((r) => `${r.method} ${r.path.replace(/^.*\/entities/, '')}${r.query ? `?${r.query}` : ''}`);

describe('a create whose answer leaves the pipeline out (item 12)', () => {
  it('remote_query[load-only]=id with a pipeline: 201, exactly one step, in the pipeline', async () => {
    const res = await create('&remote_query[load-only]=id', { name: 'Load only', pipeline: { id: SALES } });
    expect(res.status).toBe(201);
    expect(named('Load only')).toHaveLength(1);
    expect(named('Load only')[0]).toMatchObject({ pipeline_id: SALES, sort_order: 5 });
    const id = named('Load only')[0]?.id;
    // Only what Pipeliner's answer holds: the fields load-only left out are absent, none is wrong.
    expect(res.body).toEqual({ id, status: 'active', remote_data: { id } });
    expect(calls()).toEqual(['POST /Steps?validation-level=8&load-only=id', `GET /Steps/${id}?load-only=id%2Cpipeline_id`]);
  });

  it.each([
    ['load-only=id,name', '&remote_query[load-only]=id,name'],
    ['load-only=id,pipeline.name', '&remote_query[load-only]=id,pipeline.name'],
    ['expand=pipeline and load-only=id,pipeline.id', '&remote_query[expand]=pipeline&remote_query[load-only]=id,pipeline.id'],
  ])('%s with a pipeline: 201 and one step', async (_case, query) => {
    const res = await create(query, { name: 'Trimmed', pipeline: { id: RENEWALS } });
    expect(res.status).toBe(201);
    expect(named('Trimmed')).toHaveLength(1);
    expect(named('Trimmed')[0]?.pipeline_id).toBe(RENEWALS);
    expect(res.body.id).toBe(named('Trimmed')[0]?.id);
  });

  it('answers the raw format as Pipeliner sent it', async () => {
    const res = await create('&remote_query[load-only]=id&truto_response_format=raw', { name: 'Raw', pipeline: { id: SALES } });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ success: true, data: { id: named('Raw')[0]?.id } });
  });

  it('does not read back when the answer carries pipeline_id', async () => {
    const res = await create('&remote_query[load-only]=id,pipeline_id', { name: 'Carried', pipeline: { id: SALES } });
    expect(res.status).toBe(201);
    expect(calls().filter((c) => c.startsWith('GET /Steps/'))).toEqual([]);
  });
});

describe('bodies Pipeliner must not get (item 13): 400 naming the fields, nothing sent', () => {
  it.each<[string, unknown, string[]]>([
    ['remote_data.pipeline_id other than pipeline.id', { name: 'X', pipeline: { id: SALES }, remote_data: { pipeline_id: RENEWALS } }, ['pipeline.id', 'remote_data.pipeline_id']],
    ['remote_data.sort_order other than position', { name: 'X', position: 1, remote_data: { sort_order: 3 } }, ['position', 'remote_data.sort_order']],
    ['remote_data.name other than name', { name: 'X', remote_data: { name: 'Y' } }, ['name', 'remote_data.name']],
    ['position 2147483648', { name: 'X', pipeline: { id: SALES }, position: 2147483648 }, ['position']],
    ['remote_data.sort_order 2147483648', { name: 'X', pipeline: { id: SALES }, remote_data: { sort_order: 2147483648 } }, ['remote_data.sort_order']],
    ['a 200,000-character name', { name: 'x'.repeat(200_000) }, ['name']],
    ['a 256-character name', { name: 'x'.repeat(256) }, ['name']],
    ['a name with a NUL', '{"name":"Won\\u0000"}', ['name']],
    ['a name with a lone surrogate', '{"name":"Won\\ud800"}', ['name']],
    ['a pipeline id that is no UUID', { name: 'X', pipeline: { id: 'sales' } }, ['pipeline.id']],
    ['remote_data.pipeline_id that is no UUID', { name: 'X', remote_data: { pipeline_id: 'sales' } }, ['remote_data.pipeline_id']],
  ])('%s', async (_case, body, paths) => {
    const res = await create('', body);
    expect(res.status).toBe(400);
    expect(res.body.details.failures.map((f: { path: string }) => f.path)).toEqual(paths);
    expect(h.sandbox.requests).toEqual([]);
    expect(h.sandbox.steps()).toHaveLength(8);
  });

  it('says which two fields disagree', async () => {
    const res = await create('', { name: 'X', pipeline: { id: SALES }, remote_data: { pipeline_id: RENEWALS } });
    expect(res.body.details.failures).toEqual([
      { path: 'pipeline.id', message: "conflicts with remote_data.pipeline_id (both set Pipeliner's pipeline_id, to different values): send one of them, or the same value in both" },
      { path: 'remote_data.pipeline_id', message: "conflicts with pipeline.id (both set Pipeliner's pipeline_id, to different values): send one of them, or the same value in both" },
    ]);
  });

  it('accepts remote_data that agrees with the unified fields, and 255 characters', async () => {
    const name = 'é'.repeat(255);
    const res = await create('', { name, pipeline: { id: SALES }, position: 2, remote_data: { pipeline_id: SALES.toUpperCase(), sort_order: 2, name } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name, position: 2, pipeline: { id: SALES, name: 'Sales Pipeline' } });
  });

  it('still clamps a position past the end of the pipeline, and the meta schema says so', async () => {
    const res = await create('', { name: 'Far', pipeline: { id: SALES }, position: 2147483647 });
    expect(res.status).toBe(201);
    expect(res.body.position).toBe(5);
    const meta = await request(h.app).get(`/unified/crm/stages/meta/create?integrated_account_id=${h.accountId}`).set(AUTH);
    const { properties } = meta.body.request_body_schema;
    expect(properties.position).toMatchObject({ type: 'integer', minimum: 0, maximum: 2147483647 });
    expect(properties.position.description).toContain('A position past the end of the pipeline puts the stage last');
    expect(properties.name).toMatchObject({ type: 'string', minLength: 1, maxLength: 255 });
    expect(properties.pipeline.properties.id).toMatchObject({ type: 'string', format: 'uuid' });
  });
});
