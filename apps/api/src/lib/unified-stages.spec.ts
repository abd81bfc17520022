import { SANDBOX_SEED_IDS } from '@unicrm/sandboxes';
import request from 'supertest';
import { AUTH, type Harness, startHarness } from '../testing/harness';

/**
 * The whole stage lifecycle over HTTP (issue 13): list, get, create, update, delete on the Pipeliner sandbox, which
 * checks every request and answer against Pipeliner's OpenAPI document (no contract violations, after each test).
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());
beforeEach(() => h.sandbox.reset());
afterEach(() => expect(h.sandbox.takeContractViolations()).toEqual([]));

const SALES = SANDBOX_SEED_IDS.salesPipelineId;
const RENEWALS = SANDBOX_SEED_IDS.renewalsPipelineId;
const [QUALIFICATION, NEEDS_ANALYSIS, PROPOSAL] = SANDBOX_SEED_IDS.salesStepIds;
const q = (extra = '') => `integrated_account_id=${h.accountId}${extra}`;
const list = (extra = '') => request(h.app).get(`/unified/crm/stages?${q(extra)}`).set(AUTH);
/** The query strings the sandbox received for a path ending, decoded. */
const sent = (method: string, suffix: string) =>
  h.sandbox.requests.filter((r) => r.method === method && r.path.endsWith(suffix)).map((r) => decodeURIComponent(r.query));

describe('GET /unified/crm/stages', () => {
  it("answers Truto's envelope, the stages in the unified shape with their pipeline's name", async () => {
    const res = await list('&truto_ignore_remote_data=true');
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(['result', 'next_cursor', 'prev_cursor', 'result_count']);
    expect(res.body.result_count).toBe(8);
    expect(res.body.next_cursor).toBeNull();
    expect(res.body.prev_cursor).toBeNull();
    expect(res.body.result[0]).toEqual({
      id: QUALIFICATION,
      name: 'Qualification',
      position: 0,
      status: 'active',
      pipeline: { id: SALES, name: 'Sales Pipeline' },
      created_at: '2024-01-15T09:00:00.000Z',
      updated_at: '2024-01-15T09:00:00.000Z',
    });
    expect(res.body.result.map((s: { pipeline: { name: string } }) => s.pipeline.name)).toContain('Renewals');
    // Pipeliner's default page is 30 (pipeliner-api.md §4); order by id, the key pages never repeat or skip on.
    expect(sent('GET', '/entities/Steps')).toEqual(['first=30']);
  });

  it('pages with limit and next_cursor, and back with prev_cursor; every stage once', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await list(`&limit=3${cursor ? `&next_cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.body.result_count).toBe(res.body.result.length);
      seen.push(...res.body.result.map((s: { id: string }) => s.id));
      if (pages > 0) expect(res.body.prev_cursor).toEqual(expect.any(String));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(8);
    expect(new Set(seen).size).toBe(8);

    const second = await list('&limit=3').then((first) => list(`&limit=3&next_cursor=${encodeURIComponent(first.body.next_cursor)}`));
    const back = await list(`&limit=3&next_cursor=${encodeURIComponent(second.body.prev_cursor)}`);
    expect(back.body.result.map((s: { id: string }) => s.id)).toEqual(seen.slice(0, 3));
  });

  it("lowers a limit past Pipeliner's largest page (100) to it, and truto_ignore_limit gives the default", async () => {
    expect((await list('&limit=5000')).status).toBe(200);
    expect((await list('&limit=5000&truto_ignore_limit=true')).status).toBe(200);
    expect(sent('GET', '/entities/Steps')).toEqual(['first=100', 'first=30']);
  });

  it('filters by pipeline, name, status and dates, as Pipeliner filters', async () => {
    const byPipeline = await list(`&pipeline[id]=${RENEWALS}`);
    expect(byPipeline.body.result.map((s: { name: string }) => s.name)).toEqual(['Renewal Due', 'Renewal Quoted', 'Renewed']);
    const byName = await list('&name=Proposal');
    expect(byName.body.result.map((s: { id: string }) => s.id)).toEqual([PROPOSAL]);
    const recent = await list('&created_at[gte]=2025-01-01T00:00:00Z');
    expect(recent.body.result).toEqual([]);
    const between = await list('&updated_at[gte]=2024-01-01T00:00:00Z&updated_at[lte]=2024-12-31T00:00:00Z');
    expect(between.body.result_count).toBe(8);
    expect(sent('GET', '/entities/Steps')).toEqual([
      `first=30&filter[pipeline_id]=${RENEWALS}`,
      'first=30&filter[name]=Proposal',
      'first=30&filter[created]=2025-01-01T00:00:00Z&filter-op[created]=gte',
      'first=30&filter[modified]=2024-01-01T00:00:00Z,2024-12-31T00:00:00Z&filter-op[modified]=between',
    ]);
    await request(h.app).delete(`/unified/crm/stages/${PROPOSAL}?${q()}`).set(AUTH).expect(200);
    const inactive = await list('&status=inactive');
    expect(inactive.body.result).toEqual([expect.objectContaining({ id: PROPOSAL, status: 'inactive' })]);
  });

  it('answers 400 naming a parameter that is not a filter of the integration, and one Pipeliner cannot combine; nothing is sent', async () => {
    const unknown = await list('&position=3&truto_exclude_fields=remote_data');
    expect(unknown.status).toBe(400);
    expect(unknown.body.details.failures).toEqual([
      { path: 'position', message: expect.stringContaining('Pipeliner filters by pipeline, name, status, created_at, updated_at') },
    ]);
    const bounds = await list('&created_at[gt]=2024-01-01T00:00:00Z&created_at[lt]=2025-01-01T00:00:00Z');
    expect(bounds.status).toBe(400);
    expect(bounds.body.details.failures[0].path).toBe('created_at');
    const badDate = await list('&created_at=yesterday');
    expect(badDate.status).toBe(400);
    expect(h.sandbox.requests).toEqual([]);
  });

  it('merges remote_query into the connector query (its filter keys too), remote_query winning', async () => {
    const res = await list(`&pipeline[id]=${SALES}&remote_query[filter][name]=Closing&remote_query[order-by]=-sort_order`);
    expect(res.body.result.map((s: { name: string }) => s.name)).toEqual(['Closing']);
    expect(sent('GET', '/entities/Steps')).toEqual([`first=30&filter[pipeline_id]=${SALES}&filter[name]=Closing&order-by=-sort_order`]);
  });

  it('refuses a cursor it did not issue, or issued for another account or query', async () => {
    const first = await list('&limit=2');
    const cursor = encodeURIComponent(first.body.next_cursor);
    const other = await h.connect();
    const cases = [
      `integrated_account_id=${other}&limit=2&next_cursor=${cursor}`,
      `${q('&limit=2&name=Proposal')}&next_cursor=${cursor}`,
      `${q('&limit=2&remote_query[expand]=pipeline')}&next_cursor=${cursor}`,
      q(`&next_cursor=${cursor.slice(0, -2)}AA`),
      q('&next_cursor=WyIwMDAwMDAwMC01N2U5LTQwMDAtODAwMC0wMDAwMDAwMDAwMDIiXQ=='),
    ];
    h.sandbox.requests.length = 0;
    for (const query of cases) {
      const res = await request(h.app).get(`/unified/crm/stages?${query}`).set(AUTH);
      expect(res.status).toBe(400);
      expect(res.body.details.failures[0].path).toBe('next_cursor');
    }
    expect(h.sandbox.requests).toEqual([]);
    // The same cursor with another page size is the same list.
    expect((await list(`&limit=5&next_cursor=${cursor}`)).status).toBe(200);
  });

  it('keys result by a field with truto_key_by, and shapes records as on create (normalized, excluded fields)', async () => {
    const keyed = await list(`&pipeline[id]=${RENEWALS}&truto_key_by=name&truto_exclude_fields=remote_data,pipeline.name`);
    expect(Object.keys(keyed.body.result)).toEqual(['Renewal Due', 'Renewal Quoted', 'Renewed']);
    expect(keyed.body.result['Renewed']).toEqual(expect.objectContaining({ name: 'Renewed', pipeline: { id: RENEWALS } }));
    expect(keyed.body.result_count).toBe(3);
    const normalized = await list('&limit=1&truto_response_format=normalized');
    expect(Object.keys(normalized.body.result[0])).toEqual(['id', 'name', 'position', 'status', 'pipeline', 'created_at', 'updated_at']);
  });

  it("answers raw: Pipeliner's page byte for byte, the cursors in headers, which page on", async () => {
    const raw = await list('&limit=5&truto_response_format=raw').buffer(true).parse((res, done) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      res.on('end', () => done(null, text));
    });
    const page = JSON.parse(raw.body as string);
    expect(page).toMatchObject({ success: true, total: 8, page_info: { has_next_page: true } });
    expect(page.data).toHaveLength(5);
    expect(raw.headers['unicrm-prev-cursor']).toBeUndefined();
    const next = await list(`&limit=5&truto_response_format=raw&next_cursor=${encodeURIComponent(raw.headers['unicrm-next-cursor'] as string)}`);
    expect(next.body.data).toHaveLength(3);
    expect(next.headers['unicrm-next-cursor']).toBeUndefined();
    expect(next.headers['unicrm-prev-cursor']).toEqual(expect.any(String));
  });

  it('serves its spellings (letter case, trailing slash) on the same route', async () => {
    const res = await request(h.app).get(`/Unified/CRM/Stages/?${q('&limit=1')}`).set(AUTH);
    expect(res.status).toBe(200);
    expect(res.body.result_count).toBe(1);
  });
});

describe('a walk with limit=1 while the pipeline changes', () => {
  it('never repeats or skips a stage that stays, whatever is reordered, moved or deleted meanwhile', async () => {
    const before = (await list()).body.result.map((s: { id: string }) => s.id) as string[];
    const seen: string[] = [];
    const removed = new Set<string>();
    let cursor: string | null = null;
    let step = 0;
    do {
      const res = await list(`&limit=1${cursor ? `&next_cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.status).toBe(200);
      seen.push(...res.body.result.map((s: { id: string }) => s.id));
      cursor = res.body.next_cursor;
      // Between pages: move the last-seen stage to the front, move one to another pipeline, delete one not yet seen.
      const last = seen[seen.length - 1] as string;
      if (step === 1) await request(h.app).patch(`/unified/crm/stages/${last}?${q()}`).set(AUTH).send({ position: 0 }).expect(200);
      if (step === 2) await request(h.app).patch(`/unified/crm/stages/${before[6]}?${q()}`).set(AUTH).send({ pipeline: { id: RENEWALS } }).expect(200);
      if (step === 3) {
        const victim = before[5] as string;
        await request(h.app).delete(`/unified/crm/stages/${victim}?${q()}`).set(AUTH).expect(200);
        removed.add(victim);
      }
      if (step === 4) await request(h.app).patch(`/unified/crm/stages/${before[0]}?${q()}`).set(AUTH).send({ position: 4 }).expect(200);
      step++;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(before.filter((id) => !removed.has(id)));
  });
});

describe('GET /unified/crm/stages/:id', () => {
  it('answers the stage; an unknown id is the provider 404', async () => {
    const res = await request(h.app).get(`/unified/crm/stages/${NEEDS_ANALYSIS}?${q('&truto_exclude_fields=remote_data')}`).set(AUTH);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: NEEDS_ANALYSIS, name: 'Needs Analysis', position: 1, status: 'active', pipeline: { id: SALES, name: 'Sales Pipeline' } });
    const missing = await request(h.app).get(`/unified/crm/stages/00000000-0000-4000-8000-00000000dead?${q()}`).set(AUTH);
    expect(missing.status).toBe(404);
    expect(missing.body.truto_is_remote_error).toBe(true);
  });

  it('shows a deleted stage as inactive with remote_query[include-deleted]=true', async () => {
    await request(h.app).delete(`/unified/crm/stages/${PROPOSAL}?${q()}`).set(AUTH).expect(200);
    expect((await request(h.app).get(`/unified/crm/stages/${PROPOSAL}?${q()}`).set(AUTH)).status).toBe(404);
    const res = await request(h.app).get(`/unified/crm/stages/${PROPOSAL}?${q('&remote_query[include-deleted]=true')}`).set(AUTH);
    expect(res.body).toMatchObject({ id: PROPOSAL, status: 'inactive' });
  });
});

describe('PATCH /unified/crm/stages/:id', () => {
  const patch = (id: string, body: unknown, extra = '') => request(h.app).patch(`/unified/crm/stages/${id}?${q(extra)}`).set(AUTH).send(body as object);

  it('renames with a plain PATCH of the Step', async () => {
    const res = await patch(PROPOSAL, { name: '  Offer  ' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: PROPOSAL, name: 'Offer', position: 2, pipeline: { id: SALES, name: 'Sales Pipeline' } });
    const write = h.sandbox.requests.find((r) => r.method === 'PATCH');
    expect(write?.query).toBe('');
    expect(JSON.parse(write?.body ?? '{}')).toEqual({ name: 'Offer' });
  });

  it('reorders with sort_order at validation-level=8; the others shift', async () => {
    const res = await patch(PROPOSAL, { position: 0 });
    expect(res.body.position).toBe(0);
    expect(h.sandbox.requests.find((r) => r.method === 'PATCH')?.query).toBe('validation-level=8');
    const order = (await list(`&pipeline[id]=${SALES}&remote_query[order-by]=sort_order`)).body.result.map((s: { name: string }) => s.name);
    expect(order).toEqual(['Proposal', 'Qualification', 'Needs Analysis', 'Negotiation', 'Closing']);
  });

  it('moves a stage to another pipeline (pipeline_id at validation-level=8), answering the new pipeline', async () => {
    const res = await patch(PROPOSAL, { pipeline: { id: RENEWALS }, position: 1 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ position: 1, pipeline: { id: RENEWALS, name: 'Renewals' } });
    expect(JSON.parse(h.sandbox.requests.find((r) => r.method === 'PATCH')?.body ?? '{}')).toEqual({ pipeline_id: RENEWALS, sort_order: 1 });
  });

  it("answers 400 for what Pipeliner cannot do, naming the field, and sends nothing", async () => {
    const cases: Array<[unknown, string]> = [
      [{ status: 'inactive' }, 'status'],
      [{ name: '' }, 'name'],
      [{ name: 'x'.repeat(256) }, 'name'],
      [{ pipeline: { id: 'sales' } }, 'pipeline.id'],
      [{ position: -1 }, 'position'],
      [{ position: 1, remote_data: { sort_order: 2 } }, 'position'],
      [{ colour: 'red' }, 'colour'],
      [[], ''],
    ];
    for (const [body, path] of cases) {
      const res = await patch(PROPOSAL, body);
      expect(res.status).toBe(400);
      if (path) expect(res.body.details.failures.map((f: { path: string }) => f.path)).toContain(path);
    }
    const inactive = await patch(PROPOSAL, { status: 'inactive' });
    expect(inactive.body.message).toContain('Use DELETE /unified/crm/stages/:id');
    expect(h.sandbox.requests).toEqual([]);
  });

  it("takes status 'active' as what a step that exists is: read when nothing else is sent, 404 for a deleted step", async () => {
    const same = await patch(PROPOSAL, { status: 'active' });
    expect(same.status).toBe(200);
    expect(same.body).toMatchObject({ id: PROPOSAL, name: 'Proposal', status: 'active' });
    expect(h.sandbox.requests.map((r) => r.method)).toEqual(['GET']);
    await request(h.app).delete(`/unified/crm/stages/${PROPOSAL}?${q()}`).set(AUTH).expect(200);
    const deleted = await patch(PROPOSAL, { status: 'active', name: 'Proposal again' });
    expect(deleted.status).toBe(404);
    expect(deleted.body.truto_is_remote_error).toBe(true);
  });

  it('answers the provider 404 for an unknown stage, mirrored', async () => {
    const res = await patch('00000000-0000-4000-8000-00000000dead', { name: 'x' });
    expect(res.status).toBe(404);
    expect(res.body.truto_is_remote_error).toBe(true);
  });

  it('replays an update with the same Idempotency-Key (one PATCH at Pipeliner); another body with it is a 422', async () => {
    const first = await patch(PROPOSAL, { name: 'Once' }).set('Idempotency-Key', 'rename-1');
    const again = await patch(PROPOSAL, { name: 'Once' }).set('Idempotency-Key', 'rename-1');
    expect(again.status).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(h.sandbox.requests.filter((r) => r.method === 'PATCH')).toHaveLength(1);
    expect((await patch(PROPOSAL, { name: 'Twice' }).set('Idempotency-Key', 'rename-1')).status).toBe(422);
  });
});

describe('DELETE /unified/crm/stages/:id', () => {
  const remove = (id: string, extra = '') => request(h.app).delete(`/unified/crm/stages/${id}?${q(extra)}`).set(AUTH);

  it('answers the deleted stage (inactive) as Pipeliner now shows it; raw is the delete answer', async () => {
    const res = await remove(PROPOSAL, '&truto_exclude_fields=remote_data');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: PROPOSAL, name: 'Proposal', status: 'inactive', pipeline: { id: SALES } });
    const raw = await remove(NEEDS_ANALYSIS, '&truto_response_format=raw');
    expect(raw.body).toEqual({ success: true, data: NEEDS_ANALYSIS });
    expect(h.sandbox.steps().filter((s) => s.is_deleted).map((s) => s.id).sort()).toEqual([NEEDS_ANALYSIS, PROPOSAL].sort());
  });

  it("answers a second delete with Pipeliner's 404; with the same Idempotency-Key, the first answer", async () => {
    const first = await remove(PROPOSAL).set('Idempotency-Key', 'del-1');
    const replay = await remove(PROPOSAL).set('Idempotency-Key', 'del-1');
    expect(replay.status).toBe(200);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toEqual(first.body);
    const second = await remove(PROPOSAL);
    expect(second.status).toBe(404);
    expect(second.body.truto_is_remote_error).toBe(true);
    expect(h.sandbox.requests.filter((r) => r.method === 'DELETE')).toHaveLength(2);
  });

  it('marks the account needs_reauth when Pipeliner answers 401', async () => {
    const account = await h.connect({ password: 'wrong' }, false);
    const res = await request(h.app).delete(`/unified/crm/stages/${PROPOSAL}?integrated_account_id=${account}`).set(AUTH);
    expect(res.status).toBe(401);
    expect(res.body.truto_is_remote_error).toBe(true);
    const later = await request(h.app).get(`/unified/crm/stages?integrated_account_id=${account}`).set(AUTH);
    expect(later.status).toBe(401);
    expect(later.body.message).toContain('needs re-authentication');
  });
});

describe('the data plane routes', () => {
  it('answers 405 with Allow for a known path and another method, 404 for an unknown resource, 501 for a method the integration lacks', async () => {
    const put = await request(h.app).put(`/unified/crm/stages/${PROPOSAL}?${q()}`).set(AUTH).send({});
    expect(put.status).toBe(405);
    expect(put.headers.allow).toBe('GET, PATCH, DELETE');
    const unknown = await request(h.app).get(`/unified/crm/widgets?${q()}`).set(AUTH);
    expect(unknown.status).toBe(404);
    expect(unknown.body.message).toContain('crm/pipelines, crm/stages');
    const nowhere = await request(h.app).get('/unified/crm').set(AUTH);
    expect(nowhere.status).toBe(404);
    const lacking = await request(h.app).delete(`/unified/crm/pipelines/${SALES}?${q()}`).set(AUTH);
    expect(lacking.status).toBe(501);
    const patchPipeline = await request(h.app).patch(`/unified/crm/pipelines/${SALES}?${q()}`).set(AUTH).send({ name: 'x' });
    expect(patchPipeline.status).toBe(501);
    expect(patchPipeline.body.message).toBe('The pipeliner integration cannot update pipelines.');
    expect(h.sandbox.requests).toEqual([]);
  });

  it('asks for the token before anything else', async () => {
    expect((await request(h.app).get('/unified/crm/widgets')).status).toBe(401);
    expect((await request(h.app).put('/proxy/Steps')).status).toBe(401);
  });
});
