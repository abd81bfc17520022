import { SANDBOX_SEED_IDS } from '@unicrm/sandboxes';
import request from 'supertest';
import { AUTH, type Harness, startHarness } from '../testing/harness';

// POST /unified/crm/stages/batch (issue 18) on the Pipeliner sandbox (contract-checked): creates through one
// batch-modify per 100 Steps, per-item answers and errors in request order, updates through single PATCHes,
// Prefer: return=minimal, the batch's Idempotency-Key and each item's, and an ambiguous batch retried without
// duplicates.
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ core: { config: { remoteTimeoutMs: 300 } } });
});
afterAll(() => h.close());
beforeEach(() => h.sandbox.reset());
afterEach(() => expect(h.sandbox.takeContractViolations()).toEqual([]));

const SALES = SANDBOX_SEED_IDS.salesPipelineId;
const [QUALIFICATION] = SANDBOX_SEED_IDS.salesStepIds;
const batch = (items: unknown[], headers: Record<string, string> = {}, extra = '') =>
  request(h.app)
    .post(`/unified/crm/stages/batch?integrated_account_id=${h.accountId}${extra}`)
    .set(AUTH)
    .set(headers)
    .send({ items });
const create = (name: string, extra: Record<string, unknown> = {}) => ({ method: 'create', body: { name, pipeline: { id: SALES }, ...extra } });
const sent = (method: string, suffix: string) => h.sandbox.requests.filter((r) => r.method === method && r.path.endsWith(suffix));
const named = (name: string) => h.sandbox.steps().filter((s) => s.name === name);
/** The remote timeout is 300 ms: an ambiguous key is retried after 600 ms. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 650));

describe('POST /unified/crm/stages/batch', () => {
  it('creates through one batch-modify and answers each item in order: the stage, or its own error', async () => {
    const res = await batch([
      create('Batch A'),
      { method: 'create', body: { pipeline: { id: SALES } } },
      create('Batch B'),
      { method: 'create', body: { name: 'x', pipeline: { id: SALES }, colour: 'red' } },
    ]);
    expect(res.status).toBe(200);
    expect(res.body.succeeded).toBe(2);
    expect(res.body.failed).toBe(2);
    const [a, missing, b, unknown] = res.body.result;
    expect(a).toMatchObject({ index: 0, method: 'create', status: 201, result: { id: named('Batch A')[0]?.id, name: 'Batch A', pipeline: { id: SALES, name: 'Sales Pipeline' } } });
    expect(a.result.remote_data).toMatchObject({ id: a.result.id, name: 'Batch A' });
    expect(missing).toMatchObject({ index: 1, status: 400, error: { statusCode: 400, truto_error_insight: { missing_required_body_fields: { value: ['name'] } } } });
    expect(b).toMatchObject({ index: 2, status: 201, result: { name: 'Batch B' } });
    expect(unknown).toMatchObject({ index: 3, status: 400, error: { message: expect.stringContaining('Invalid body') } });
    // The two valid creates went in one call; each was read back once.
    expect(sent('POST', '/entities/Steps/batch-modify')).toHaveLength(1);
    expect(sent('POST', '/entities/Steps')).toHaveLength(0);
    expect(sent('GET', `/entities/Steps/${a.result.id}`)).toHaveLength(1);
  });

  it("mirrors Pipeliner's error for the item it refused and keeps the others (rollback-method=1)", async () => {
    const res = await batch([create('Kept'), create('Nowhere', { pipeline: { id: '00000000-0000-4000-8000-00000000dead' } })]);
    expect(res.status).toBe(200);
    expect(res.body.result[0]).toMatchObject({ status: 201, result: { name: 'Kept' } });
    expect(res.body.result[1].status).toBeGreaterThanOrEqual(400);
    expect(res.body.result[1].error).toMatchObject({ truto_is_remote_error: true });
    expect(named('Kept')).toHaveLength(1);
    expect(named('Nowhere')).toHaveLength(0);
    expect(decodeURIComponent(sent('POST', '/batch-modify')[0]?.query ?? '')).toContain('rollback-method=1');
  });

  it('with Prefer: return=minimal answers ids only and reads nothing back: 100 creates, one provider call', async () => {
    const items = Array.from({ length: 100 }, (_, n) => create(`Minimal ${n}`));
    const res = await batch(items, { prefer: 'return=minimal' });
    expect(res.status).toBe(200);
    expect(res.headers['preference-applied']).toBe('return=minimal');
    expect(res.body.succeeded).toBe(100);
    expect(res.body.result[42]).toEqual({ index: 42, method: 'create', status: 201, result: { id: named('Minimal 42')[0]?.id } });
    expect(h.sandbox.requests).toHaveLength(1);
  });

  it('runs updates through the single PATCH, beside creates', async () => {
    const res = await batch([create('Beside'), { method: 'update', id: QUALIFICATION, body: { name: 'Qualified lead' } }]);
    expect(res.body.result.map((r: { status: number }) => r.status)).toEqual([201, 200]);
    expect(res.body.result[1].result).toMatchObject({ id: QUALIFICATION, name: 'Qualified lead' });
    expect(sent('PATCH', `/entities/Steps/${QUALIFICATION}`)).toHaveLength(1);
  });

  it('refuses a body that is not a batch of 1 to 100 items, naming the problem', async () => {
    const tooMany = await batch(Array.from({ length: 101 }, (_, n) => create(`n${n}`)));
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.message).toContain('1 to 100 items');
    const badItem = await batch([{ method: 'create', id: 'x', body: {} }, { method: 'update', body: {} }, { method: 'delete', id: 'x', body: {} }]);
    expect(badItem.status).toBe(400);
    expect(badItem.body.details.failures.map((f: { path: string }) => f.path)).toEqual(['items.0.id', 'items.1.id', 'items.2.method']);
    const notJson = await request(h.app).post(`/unified/crm/stages/batch?integrated_account_id=${h.accountId}`).set(AUTH).set('content-type', 'application/json').send('[');
    expect(notJson.status).toBe(400);
    expect(h.sandbox.requests).toHaveLength(0);
  });

  it('with dry_run=true checks every item as its write would be and sends nothing', async () => {
    const res = await batch([create('Dry'), { method: 'create', body: { name: '' } }, { method: 'update', id: QUALIFICATION, body: { name: 'Renamed' } }], {}, '&dry_run=true');
    expect(res.status).toBe(200);
    expect(res.body.result.map((r: { status: number }) => r.status)).toEqual([200, 400, 200]);
    expect(res.body.result[0].result).toEqual({ name: 'Dry', pipeline: { id: SALES } });
    expect(res.body).toMatchObject({ succeeded: 2, failed: 1 });
    expect(h.sandbox.requests).toHaveLength(0);
    expect((await batch([create('Dry')], {}, '&dry_run=maybe')).status).toBe(400);
  });

  it("replays a batch sent again with its Idempotency-Key, and refuses the key for another batch", async () => {
    const items = [create('Once 1'), create('Once 2')];
    const first = await batch(items, { 'idempotency-key': 'batch-once' });
    expect(first.body.succeeded).toBe(2);
    const again = await batch(items, { 'idempotency-key': 'batch-once' });
    expect(again.status).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(sent('POST', '/batch-modify')).toHaveLength(1);
    const other = await batch([create('Other')], { 'idempotency-key': 'batch-once' });
    expect(other.status).toBe(422);
    expect(named('Once 1')).toHaveLength(1);
  });

  it("replays an item whose idempotency_key a single create used, and writes only the others", async () => {
    const single = await request(h.app)
      .post(`/unified/crm/stages?integrated_account_id=${h.accountId}`)
      .set(AUTH)
      .set('idempotency-key', 'row-1')
      .send({ name: 'Row 1', pipeline: { id: SALES } });
    expect(single.status).toBe(201);
    const res = await batch([
      { ...create('Row 1'), idempotency_key: 'row-1' },
      { ...create('Row 2'), idempotency_key: 'row-2' },
    ]);
    expect(res.body.result[0]).toEqual({ index: 0, method: 'create', status: 201, result: single.body, replayed: true });
    expect(res.body.result[1]).toMatchObject({ status: 201, result: { name: 'Row 2' } });
    expect(named('Row 1')).toHaveLength(1);
    expect(JSON.parse(sent('POST', '/batch-modify')[0]?.body ?? '[]')).toHaveLength(1);
  });

  it('retried after its answer was lost, finds what the first attempt created instead of creating it twice', async () => {
    h.sandbox.injectFault({ method: 'POST', path: '/batch-modify', body: 'truncated', times: 1 });
    const items = [create('Lost 1'), create('Lost 2')];
    const first = await batch(items, { 'idempotency-key': 'batch-lost' });
    expect(first.status).toBe(200);
    expect(first.body.result.map((r: { status: number }) => r.status)).toEqual([502, 502]);
    expect(first.body.result[0].error.message).toContain('retry with the same Idempotency-Key');
    expect(named('Lost 1')).toHaveLength(1);
    // Too early: each item says when to come back (its key is still settling).
    const early = await batch(items, { 'idempotency-key': 'batch-lost' });
    expect(early.body.result.map((r: { status: number; retry_after: number }) => [r.status, r.retry_after])).toEqual([
      [409, 1],
      [409, 1],
    ]);
    await settle();
    const retry = await batch(items, { 'idempotency-key': 'batch-lost' });
    expect(retry.body.result.map((r: { status: number }) => r.status)).toEqual([201, 201]);
    expect(retry.body.result[0].result.id).toBe(named('Lost 1')[0]?.id);
    expect(named('Lost 1')).toHaveLength(1);
    expect(named('Lost 2')).toHaveLength(1);
    expect(sent('POST', '/batch-modify')).toHaveLength(1);
  });

  it('is in the OpenAPI document', async () => {
    const res = await request(h.app).get('/openapi.json').set(AUTH);
    expect(res.body.paths['/unified/crm/stages/batch'].post.operationId).toBe('batchStages');
    expect(res.body.components.schemas.BatchBody.properties.items.maxItems).toBe(100);
  });
});

describe('POST /unified/crm/stages/batch retried after a crash', () => {
  // Its own harness: 100 lookups on a loaded machine need more than the 300 ms per call of the one above.
  let slow: Harness;
  beforeAll(async () => {
    slow = await startHarness({ core: { config: { remoteTimeoutMs: 3000 } } });
  });
  afterAll(() => slow.close());
  afterEach(() => expect(slow.sandbox.takeContractViolations()).toEqual([]));

  it("looks for 100 lost creates without filling the account's bulkhead (at most UNICRM_BATCH_CONCURRENCY lookups at once)", async () => {
    slow.sandbox.injectFault({ method: 'POST', path: '/batch-modify', body: 'truncated', times: 1 });
    const items = Array.from({ length: 100 }, (_, n) => ({ ...create(`Looked ${n}`), idempotency_key: `looked-${n}` }));
    const send = () =>
      request(slow.app).post(`/unified/crm/stages/batch?integrated_account_id=${slow.accountId}`).set(AUTH).set('prefer', 'return=minimal').send({ items });
    const first = await send();
    expect(new Set(first.body.result.map((r: { status: number }) => r.status))).toEqual(new Set([502]));
    // An ambiguous key is looked for once twice the remote timeout has passed since the failure.
    await new Promise((resolve) => setTimeout(resolve, 6_100));
    const retry = await send();
    expect(retry.body.result.filter((r: { status: number }) => r.status !== 201)).toEqual([]);
    const steps = (name: string) => slow.sandbox.steps().filter((s) => s.name === name);
    expect(retry.body.result[7].result.id).toBe(steps('Looked 7')[0]?.id);
    for (let n = 0; n < 100; n += 1) expect(steps(`Looked ${n}`)).toHaveLength(1);
    expect(slow.sandbox.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/batch-modify'))).toHaveLength(1);
  }, 30_000);
});
