import request from 'supertest';
import { AUTH, type Harness, startHarness } from '../testing/harness';

// A create whose answer is lost after Pipeliner got it (timeout, broken answer) is ambiguous. With an
// Idempotency-Key, the retry looks for the step first, so a retried create never makes a second step.
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ core: { config: { remoteTimeoutMs: 300 } } });
});
afterAll(() => h.close());
beforeEach(() => h.sandbox.reset());
afterEach(() => expect(h.sandbox.takeContractViolations()).toEqual([]));

const SALES = '00000000-5a1e-4000-8000-000000000001';
const create = (key: string, name: string) =>
  request(h.app).post(`/unified/crm/stages?integrated_account_id=${h.accountId}`).set(AUTH).set('idempotency-key', key).send({ name, pipeline: { id: SALES } });
const posts = () => h.sandbox.requests.filter((r) => r.method === 'POST').length;
const named = (name: string) => h.sandbox.steps().filter((s) => s.name === name);
const HINT = 'The stage may have been created: retry with the same Idempotency-Key and unicrm will look for it before creating it again.';
/** The remote timeout is 300 ms: a retry is held off (409) until 600 ms after the first attempt. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 650));

describe('retrying an ambiguous create with the same Idempotency-Key', () => {
  it('finds the step an answer-less attempt made (body cut off), instead of creating it again', async () => {
    h.sandbox.injectFault({ method: 'POST', path: '/entities/Steps', body: 'truncated', times: 1 });
    const first = await create('amb-1', 'Cut off');
    expect(first.status).toBe(502);
    expect(first.body.message).toContain(HINT);
    expect(named('Cut off')).toHaveLength(1);

    const early = await create('amb-1', 'Cut off');
    expect(early.status).toBe(409);
    expect(early.headers['retry-after']).toBe('1');
    expect(early.body.message).toBe(
      'The first request with this Idempotency-Key may still be carried out by the provider; retry in 1 s, then unicrm looks for its result before creating again.',
    );
    await settle();
    const retry = await create('amb-1', 'Cut off');
    expect(retry.status).toBe(201);
    expect(retry.body).toMatchObject({ id: named('Cut off')[0]?.id, name: 'Cut off', pipeline: { id: SALES, name: 'Sales Pipeline' } });
    expect(posts()).toBe(1);

    const replay = await create('amb-1', 'Cut off');
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toEqual(retry.body);
    expect(named('Cut off')).toHaveLength(1);
  });

  it('finds the step of an attempt that timed out while Pipeliner was still working', async () => {
    // undici checks timeouts on a coarse clock: the 300 ms timeout fires within about a second.
    h.sandbox.injectFault({ method: 'POST', path: '/entities/Steps', latencyMs: 2000, times: 1 });
    const first = await create('amb-2', 'Slow');
    expect(first.status).toBe(504);
    expect(named('Slow')).toHaveLength(0);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(named('Slow')).toHaveLength(1);
    const retry = await create('amb-2', 'Slow');
    expect(retry.status).toBe(201);
    expect(retry.body.id).toBe(named('Slow')[0]?.id);
    expect(posts()).toBe(1);
  });

  it('creates on the retry when the first attempt made nothing (connection reset before Pipeliner acted)', async () => {
    h.sandbox.injectFault({ method: 'POST', path: '/entities/Steps', reset: true, times: 1 });
    expect((await create('amb-3', 'Reset')).status).toBe(502);
    expect(named('Reset')).toHaveLength(0);
    await settle();
    const retry = await create('amb-3', 'Reset');
    expect(retry.status).toBe(201);
    expect(named('Reset')).toHaveLength(1);
    expect(posts()).toBe(2);
  });

  it('keeps the key ambiguous when the lookup itself fails, and succeeds on the next retry', async () => {
    h.sandbox.injectFault({ method: 'POST', path: '/entities/Steps', body: 'truncated', times: 1 });
    expect((await create('amb-4', 'Twice')).status).toBe(502);
    await settle();
    h.sandbox.injectFault({ method: 'GET', path: '/entities/Steps', status: 503, times: 1 });
    expect((await create('amb-4', 'Twice')).status).toBe(503);
    const retry = await create('amb-4', 'Twice');
    expect(retry.status).toBe(201);
    expect(named('Twice')).toHaveLength(1);
    expect(posts()).toBe(1);
  });
});
