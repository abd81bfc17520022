import { SANDBOX_SEED_IDS } from '@unicrm/sandboxes';
import request from 'supertest';
import { AUTH, type Harness, startHarness } from '../testing/harness';

// Hostile inputs to POST /unified/crm/stages/batch (issue 18) on the Pipeliner sandbox: the same item key twice in
// one batch, prototype keys, unknown ids, a remote 401 and a 5xx from batch-modify, two identical batches at once.
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ core: { config: { remoteTimeoutMs: 300 } } });
});
afterAll(() => h.close());
beforeEach(() => h.sandbox.reset());
afterEach(() => expect(h.sandbox.takeContractViolations()).toEqual([]));

const SALES = SANDBOX_SEED_IDS.salesPipelineId;
const batch = (items: unknown[], headers: Record<string, string> = {}, account = h.accountId) =>
  request(h.app).post(`/unified/crm/stages/batch?integrated_account_id=${account}`).set(AUTH).set(headers).send({ items });
const create = (name: string, extra: Record<string, unknown> = {}) => ({ method: 'create', body: { name, pipeline: { id: SALES }, ...extra } });
const named = (name: string) => h.sandbox.steps().filter((s) => s.name === name);
const statuses = (res: { body: { result: Array<{ status: number }> } }) => res.body.result.map((r) => r.status);

describe('POST /unified/crm/stages/batch, hostile', () => {
  it('writes once when two items carry the same idempotency_key (same body, then another body)', async () => {
    const same = await batch([
      { ...create('Twin'), idempotency_key: 'twin' },
      { ...create('Twin'), idempotency_key: 'twin' },
    ]);
    expect(same.status).toBe(200);
    expect(named('Twin')).toHaveLength(1);
    expect(statuses(same).sort()).toEqual([201, 409]);
    const other = await batch([
      { ...create('Left'), idempotency_key: 'clash' },
      { ...create('Right'), idempotency_key: 'clash' },
    ]);
    expect(named('Left').length + named('Right').length).toBe(1);
    expect(statuses(other).filter((s) => s === 201)).toHaveLength(1);
  });

  it('refuses items that are not objects, and 100 invalid items each with its own error, sending nothing', async () => {
    const notObjects = await batch([1, 'x', null, []]);
    expect(notObjects.status).toBe(400);
    const invalid = await batch(Array.from({ length: 100 }, () => ({ method: 'create', body: { pipeline: { id: SALES } } })));
    expect(invalid.status).toBe(200);
    expect(invalid.body).toMatchObject({ succeeded: 0, failed: 100 });
    expect(new Set(statuses(invalid))).toEqual(new Set([400]));
    expect(h.sandbox.requests).toHaveLength(0);
  });

  it('does not let __proto__ in an item body through to the provider', async () => {
    const body = JSON.parse(`{"items":[{"method":"create","body":{"name":"Proto","pipeline":{"id":"${SALES}"},"__proto__":{"polluted":true}}}]}`);
    const res = await request(h.app).post(`/unified/crm/stages/batch?integrated_account_id=${h.accountId}`).set(AUTH).send(body);
    expect(res.status).toBe(200);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(h.sandbox.requests.every((r) => !(r.body ?? '').includes('polluted'))).toBe(true);
  });

  it('answers an update of an unknown id with 404 for that item only', async () => {
    const res = await batch([create('Next to unknown'), { method: 'update', id: '00000000-0000-4000-8000-00000000beef', body: { name: 'Ghost' } }]);
    expect(statuses(res)).toEqual([201, 404]);
  });

  it('answers each item when batch-modify fails with a 5xx, and replays nothing of it', async () => {
    h.sandbox.injectFault({ method: 'POST', path: '/batch-modify', status: 503, times: 1 });
    const res = await batch([create('Five 1'), create('Five 2')], { 'idempotency-key': 'five' });
    expect(res.status).toBe(200);
    expect(statuses(res)).toEqual([503, 503]);
    const again = await batch([create('Five 1'), create('Five 2')], { 'idempotency-key': 'five' });
    expect(again.headers['idempotent-replayed']).toBeUndefined();
    expect(statuses(again)).toEqual([201, 201]);
    expect(named('Five 1')).toHaveLength(1);
  });

  it('answers each item 401 and marks the account needs_reauth when batch-modify refuses the credentials', async () => {
    h.sandbox.injectFault({ method: 'POST', path: '/batch-modify', status: 401, times: 1 });
    const res = await batch([create('Auth 1'), create('Auth 2')]);
    expect(res.status).toBe(200);
    expect(statuses(res)).toEqual([401, 401]);
    const account = await request(h.app).get(`/integrated-account/${h.accountId}`).set(AUTH);
    expect(account.body.status).toBe('needs_reauth');
    const refused = await batch([create('Auth 3')]);
    expect(refused.status).toBe(401);
    await request(h.app).patch(`/integrated-account/${h.accountId}`).set(AUTH).send({ context: { password: h.sandbox.password } });
  });

  it('answers the second of two identical batches sent at once with the same key 409, and writes once', async () => {
    const items = [create('Race 1'), create('Race 2')];
    const [a, b] = await Promise.all([batch(items, { 'idempotency-key': 'race' }), batch(items, { 'idempotency-key': 'race' })]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    expect(named('Race 1')).toHaveLength(1);
  });

  it('writes once when two batches sharing item keys run at once', async () => {
    const items = [
      { ...create('Shared 1'), idempotency_key: 'shared-1' },
      { ...create('Shared 2'), idempotency_key: 'shared-2' },
    ];
    const [a, b] = await Promise.all([batch(items), batch(items)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(named('Shared 1')).toHaveLength(1);
    expect(named('Shared 2')).toHaveLength(1);
  });

  it('answers a batch of a resource without creates 501 per item, and an unknown resource 404', async () => {
    const pipelines = await request(h.app)
      .post(`/unified/crm/pipelines/batch?integrated_account_id=${h.accountId}`)
      .set(AUTH)
      .send({ items: [{ method: 'create', body: { name: 'P' } }] });
    expect(pipelines.status).toBe(200);
    expect(pipelines.body.result[0]).toMatchObject({ status: 501, error: { message: 'The pipeliner integration cannot create pipelines.' } });
    const unknown = await request(h.app).post(`/unified/crm/nothing/batch?integrated_account_id=${h.accountId}`).set(AUTH).send({ items: [create('x')] });
    expect(unknown.status).toBe(404);
    expect(h.sandbox.requests).toHaveLength(0);
  });

  it('keeps an update id with a path in it to its own record (no other entity reached)', async () => {
    const res = await batch([{ method: 'update', id: `../Pipelines/${SALES}`, body: { name: 'Escaped' } }, { method: 'update', id: '..', body: { name: 'Dots' } }]);
    expect(res.status).toBe(200);
    expect(statuses(res)[1]).toBe(400);
    expect(statuses(res)[0]).toBeGreaterThanOrEqual(400);
    expect(h.sandbox.requests.filter((r) => r.path.includes('/Pipelines'))).toEqual([]);
    // Sent encoded, as the single PATCH sends it; Pipeliner's contract wants a UUID there (the sandbox notes it).
    expect(h.sandbox.requests.map((r) => r.path)).toEqual([expect.stringMatching(/\/entities\/Steps\/\.\.%2FPipelines%2F/)]);
    expect(h.sandbox.takeContractViolations().map((v) => v.instancePath)).toEqual(['/id']);
  });
});
