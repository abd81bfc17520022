import { SANDBOX_SEED_IDS } from '@unicrm/sandboxes';
import request from 'supertest';
import { AUTH, type Harness, startHarness } from '../testing/harness';

/** Pipelines (list, get, meta) and the proxy to Pipeliner's own API (issue 13), on the contract-checking sandbox. */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());
beforeEach(() => h.sandbox.reset());
afterEach(() => expect(h.sandbox.takeContractViolations()).toEqual([]));

const SALES = SANDBOX_SEED_IDS.salesPipelineId;
const RENEWALS = SANDBOX_SEED_IDS.renewalsPipelineId;
const q = (extra = '') => `integrated_account_id=${h.accountId}${extra}`;

describe('GET /unified/crm/pipelines', () => {
  it("answers the pipelines in Truto's Pipeline shape, each with its stages in order", async () => {
    const res = await request(h.app).get(`/unified/crm/pipelines?${q('&truto_ignore_remote_data=true')}`).set(AUTH);
    expect(res.status).toBe(200);
    expect(res.body.result_count).toBe(2);
    const sales = res.body.result.find((p: { id: string }) => p.id === SALES);
    expect(sales).toEqual({
      id: SALES,
      name: 'Sales Pipeline',
      entity: 'opportunity',
      stages: ['Qualification', 'Needs Analysis', 'Proposal', 'Negotiation', 'Closing'].map((name, i) => ({
        id: SANDBOX_SEED_IDS.salesStepIds[i],
        name,
        status: 'active',
        pipeline: { id: SALES },
      })),
      created_at: '2024-01-15T09:00:00.000Z',
      updated_at: '2024-01-15T09:00:00.000Z',
    });
    expect(h.sandbox.requests.map((r) => decodeURIComponent(r.query))).toEqual(['expand=steps&first=30']);
  });

  it('filters by name, pages, and reads one by id (a deleted stage left out of its stages)', async () => {
    const byName = await request(h.app).get(`/unified/crm/pipelines?${q('&name=Renewals')}`).set(AUTH);
    expect(byName.body.result.map((p: { id: string }) => p.id)).toEqual([RENEWALS]);
    const page = await request(h.app).get(`/unified/crm/pipelines?${q('&limit=1')}`).set(AUTH);
    const next = await request(h.app).get(`/unified/crm/pipelines?${q(`&limit=1&next_cursor=${encodeURIComponent(page.body.next_cursor)}`)}`).set(AUTH);
    expect([page.body.result[0].id, next.body.result[0].id].sort()).toEqual([SALES, RENEWALS].sort());
    expect(next.body.next_cursor).toBeNull();

    await request(h.app).delete(`/unified/crm/stages/${SANDBOX_SEED_IDS.renewalsStepIds[1]}?${q()}`).set(AUTH).expect(200);
    const one = await request(h.app).get(`/unified/crm/pipelines/${RENEWALS}?${q()}`).set(AUTH);
    expect(one.status).toBe(200);
    expect(one.body.stages.map((s: { name: string }) => s.name)).toEqual(['Renewal Due', 'Renewed']);
    expect(one.body.remote_data).toMatchObject({ id: RENEWALS, name: 'Renewals' });
    const unknown = await request(h.app).get(`/unified/crm/pipelines/00000000-0000-4000-8000-00000000dead?${q()}`).set(AUTH);
    expect(unknown.status).toBe(404);
  });

  it('gives the pipeline name to the stages listed after it without reading it again', async () => {
    await request(h.app).get(`/unified/crm/pipelines?${q()}`).set(AUTH).expect(200);
    h.sandbox.requests.length = 0;
    const stages = await request(h.app).get(`/unified/crm/stages?${q(`&pipeline[id]=${RENEWALS}`)}`).set(AUTH);
    expect(stages.body.result[0].pipeline).toEqual({ id: RENEWALS, name: 'Renewals' });
    expect(h.sandbox.requests.map((r) => r.path.replace(/.*\/entities/, ''))).toEqual(['/Steps']);
  });
});

describe('GET /unified/crm/<resource>/meta/<method>', () => {
  it("answers each method's schemas for the account's integration: filters and page sizes for a list, the body for a write", async () => {
    const listMeta = await request(h.app).get(`/unified/crm/stages/meta/list?${q()}`).set(AUTH);
    expect(listMeta.status).toBe(200);
    expect(listMeta.body).toMatchObject({ method: 'list', integration: 'pipeliner', retry_safe: true, page_size: { default: 30, max: 100 } });
    expect(Object.keys(listMeta.body.query_schema.properties)).toEqual(
      expect.arrayContaining(['limit', 'next_cursor', 'truto_key_by', 'pipeline', 'name', 'status', 'created_at', 'updated_at']),
    );
    expect(listMeta.body.request_body_schema).toBeUndefined();
    const update = await request(h.app).get(`/unified/crm/stages/meta/update?${q()}`).set(AUTH);
    expect(update.body).toMatchObject({ method: 'update', retry_safe: true, documentation_link: '/openapi.json#/paths/~1unified~1crm~1stages~1{id}/patch' });
    expect(update.body.request_body_schema.required).toBeUndefined();
    expect(update.body.request_body_schema.properties.status).toMatchObject({ const: 'active' });
    const create = await request(h.app).get(`/unified/crm/stages/meta/create?${q()}`).set(AUTH);
    expect(create.body.retry_safe).toBe(false);
    const pipelines = await request(h.app).get(`/unified/crm/pipelines/meta/get?${q()}`).set(AUTH);
    expect(Object.keys(pipelines.body.schema.properties)).toEqual(['id', 'name', 'entity', 'stages', 'created_at', 'updated_at', 'remote_data']);
  });

  it('serves an integration by name without an account, 501 for a method it lacks, 400 for a method that is none', async () => {
    const byName = await request(h.app).get('/unified/crm/stages/pipeliner/meta/delete').set(AUTH);
    expect(byName.body).toMatchObject({ integration: 'pipeliner', method: 'delete' });
    expect((await request(h.app).get(`/unified/crm/pipelines/meta/delete?${q()}`).set(AUTH)).status).toBe(501);
    expect((await request(h.app).get(`/unified/crm/stages/meta/explode?${q()}`).set(AUTH)).status).toBe(400);
    expect((await request(h.app).get('/unified/crm/stages/nocrm/meta/list').set(AUTH)).status).toBe(400);
  });
});

describe('/proxy/<resource>', () => {
  const proxy = (method: 'get' | 'post' | 'patch' | 'delete', path: string, extra = '') => request(h.app)[method](`/proxy/${path}?${q(extra)}`).set(AUTH);

  it("lists Pipeliner's own records in the list envelope, paged with unicrm's cursors over Pipeliner's", async () => {
    const first = await proxy('get', 'Steps', `&limit=5&filter[pipeline_id]=${SALES}`);
    expect(first.status).toBe(200);
    expect(first.body.result_count).toBe(5);
    expect(first.body.result[0]).toMatchObject({ id: SANDBOX_SEED_IDS.salesStepIds[0], name: 'Qualification', sort_order: 0 });
    expect(first.body.next_cursor).toBeNull();
    const page = await proxy('get', 'Steps', '&limit=3');
    const next = await proxy('get', 'Steps', `&limit=3&next_cursor=${encodeURIComponent(page.body.next_cursor)}`);
    expect(next.body.result.map((s: { id: string }) => s.id)).not.toContain(page.body.result[0].id);
    const foreign = await proxy('get', 'Steps', `&limit=3&filter[name]=x&next_cursor=${encodeURIComponent(page.body.next_cursor)}`);
    expect(foreign.status).toBe(400);
    expect(h.sandbox.requests.map((r) => decodeURIComponent(r.query)).slice(0, 2)).toEqual([`filter[pipeline_id]=${SALES}&first=5`, 'first=3']);
  });

  it("answers one record as Pipeliner sent it, byte for byte, with Pipeliner's status", async () => {
    const res = await proxy('get', `Pipelines/${RENEWALS}`, '&load-only=id,name').buffer(true).parse((r, done) => {
      let text = '';
      r.on('data', (c: Buffer) => (text += c.toString('utf8')));
      r.on('end', () => done(null, text));
    });
    expect(res.status).toBe(200);
    expect(res.body).toBe(`{"success":true,"data":{"id":"${RENEWALS}","name":"Renewals"}}`);
  });

  it('creates, updates and deletes through Pipeliner, with the account credentials and no caller credentials', async () => {
    const created = await proxy('post', 'Steps', '&validation-level=8').set('Timezone', 'Europe/Paris').set('X-Other', 'no').send({ name: 'Proxied', pipeline_id: SALES });
    expect(created.status).toBe(201);
    const id = created.body.data.id as string;
    expect(created.body.data.created).toMatch(/\+01:00$/);
    const sentCreate = h.sandbox.requests[0];
    expect(sentCreate?.headers.timezone).toBe('Europe/Paris');
    expect(sentCreate?.headers['x-other']).toBeUndefined();
    expect(sentCreate?.headers.authorization).toMatch(/^Basic /);
    expect(sentCreate?.query).toBe('validation-level=8');
    const patched = await proxy('patch', `Steps/${id}`).send({ name: 'Proxied 2' });
    expect(patched.body.data.name).toBe('Proxied 2');
    const deleted = await proxy('delete', `Steps/${id}`);
    expect(deleted.body).toEqual({ success: true, data: id });
    expect(h.sandbox.steps().find((s) => s.id === id)?.is_deleted).toBe(true);
  });

  it("passes Pipeliner's errors through the error contract, refuses names that are no entity, and replays a keyed write", async () => {
    const unknown = await proxy('get', 'Contacts');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ truto_is_remote_error: true, raw_response: { name: 'ERROR_UNKNOWN_TYPE' } });
    // The sandbox's document has Steps and Pipelines only: the one request outside it is this one, on purpose.
    expect(h.sandbox.takeContractViolations().map((v) => v.path)).toEqual(['/api/v100/rest/spaces/sandbox_space/entities/Contacts']);
    for (const path of ['steps%2F..%2F..', '..', 'Steps%3Ffirst%3D1']) {
      const bad = await proxy('get', path);
      expect(bad.status).toBe(400);
    }
    const refusedFlag = await proxy('get', 'Steps', '&truto_response_format=raw');
    expect(refusedFlag.status).toBe(400);
    h.sandbox.requests.length = 0;
    const once = await proxy('post', 'Steps').set('Idempotency-Key', 'proxy-1').send({ name: 'Keyed' });
    const replay = await proxy('post', 'Steps').set('Idempotency-Key', 'proxy-1').send({ name: 'Keyed' });
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toEqual(once.body);
    expect(h.sandbox.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
  });

  it('answers 400 without an account', async () => {
    expect((await request(h.app).get('/proxy/Steps').set(AUTH)).status).toBe(400);
  });
});
