import { TOKENS } from '@unicrm/model';
import request from 'supertest';
import { AUTH, type Harness, startHarness } from '../testing/harness';
import { type ScriptedUpstream, startScriptedUpstream } from '../testing/scripted-upstream';

// Issue 12, items 1, 4 and 5, against the real app and the sandbox, with a scripted Pipeliner in front of it that
// holds or drips answers on command: order and wide bounds are asserted, never speed.

const SALES = '00000000-5a1e-4000-8000-000000000001';
const HINT = 'The stage may have been created: retry with the same Idempotency-Key and unicrm will look for it before creating it again.';

/** Supertest answers collected as they arrive, so a test can see which came first. */
function arrivals() {
  const order: string[] = [];
  const answers = new Map<string, request.Response>();
  const track = (label: string, test: request.Test) =>
    test.then((res) => {
      order.push(`${label} ${res.status}`);
      answers.set(label, res);
      return res;
    });
  return { order, answers, track };
}

/** Polls `condition` (for conditions that span the upstream and the answers). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('an Idempotency-Key held by a create that runs longer than the old stale time (item 1)', () => {
  let h: Harness;
  let upstream: ScriptedUpstream;
  let account: string;
  /** The core's clock runs this far ahead of the wall clock: the test moves time on without waiting. */
  let offsetMs = 0;
  beforeAll(async () => {
    h = await startHarness({
      core: { register: (c) => c.register(TOKENS.Clock, { useValue: { now: () => new Date(Date.now() + offsetMs) } }) },
    });
    upstream = await startScriptedUpstream(h.sandbox.serviceUrl);
    account = await h.connect({ service_url: upstream.serviceUrl });
  });
  afterAll(async () => {
    await upstream.close();
    await h.close();
  });

  it('answers 409 to the same key 77 s (and 10 min) into the first create, and makes one step', async () => {
    const create = () =>
      request(h.app).post(`/unified/crm/stages?integrated_account_id=${account}`).set(AUTH).set('idempotency-key', 'slow-create').send({ name: 'Held', pipeline: { id: SALES } });
    // Pipeliner makes the step but holds its answer, as in the issue (headers after 29 s, body after 29 more...).
    upstream.script({ method: 'POST', path: '/entities/Steps', hold: true, times: 1 });
    const first = create().then((res) => res);
    await upstream.until(() => upstream.held.length === 1);
    for (const ms of [77_000, 600_000]) {
      offsetMs = ms;
      const again = await create();
      expect(again.status).toBe(409);
      expect(again.body.message).toBe('A request with this Idempotency-Key is still being processed; retry after it finishes.');
    }
    upstream.held[0]?.release();
    expect((await first).status).toBe(201);
    expect(h.sandbox.steps().filter((s) => s.name === 'Held')).toHaveLength(1);
    const replay = await create();
    expect(replay.headers['idempotent-replayed']).toBe('true');
  });
});

describe('UNICRM_REMOTE_TIMEOUT_MS is a deadline, and each operation has one (item 4)', () => {
  let h: Harness;
  let upstream: ScriptedUpstream;
  let account: string;
  beforeAll(async () => {
    h = await startHarness({ core: { config: { remoteTimeoutMs: 500, operationTimeoutMs: 60_000 } } });
    upstream = await startScriptedUpstream(h.sandbox.serviceUrl);
    account = await h.connect({ service_url: upstream.serviceUrl });
  });
  afterAll(async () => {
    await upstream.close();
    await h.close();
  });
  const create = (key: string, name: string) =>
    request(h.app).post(`/unified/crm/stages?integrated_account_id=${account}`).set(AUTH).set('idempotency-key', key).send({ name, pipeline: { id: SALES } });

  it('ends a create whose answer drips one byte per 100 ms at the deadline: 504, the key ambiguous, then found', async () => {
    upstream.script({ method: 'POST', path: '/entities/Steps', dripMs: 100, times: 1 });
    const started = Date.now();
    const first = await create('drip', 'Dripped');
    // The body is never idle for 500 ms: undici's bodyTimeout alone would read it for minutes. Wide margin.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(first.status).toBe(504);
    expect(first.body.message).toMatch(/did not answer within 500 ms \(the call's deadline, from waiting for a connection to the answer's last byte\)\./);
    expect(first.body.message).toContain(HINT);
    // Ambiguous: held off while a late write could still land (2 × 500 ms), then looked for, not created again.
    const early = await create('drip', 'Dripped');
    expect(early.status).toBe(409);
    expect(early.body.message).toMatch(/may still be carried out by the provider/);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const retry = await create('drip', 'Dripped');
    expect(retry.status).toBe(201);
    const steps = h.sandbox.steps().filter((s) => s.name === 'Dripped');
    expect(steps).toHaveLength(1);
    expect(retry.body.id).toBe(steps[0]?.id);
  });
});

describe('the operation deadline (item 4)', () => {
  /** A harness whose only account reaches the sandbox through a scripted upstream; remote calls may take 60 s each. */
  async function start(operationTimeoutMs: number) {
    const o = await startHarness({ core: { config: { remoteTimeoutMs: 60_000, operationTimeoutMs } } });
    const up = await startScriptedUpstream(o.sandbox.serviceUrl);
    return { o, up, acc: await o.connect({ service_url: up.serviceUrl }) };
  }

  it('answers 504 at the operation deadline while Pipeliner holds the POST, the key marked ambiguous', async () => {
    const operationTimeoutMs = 800;
    const { o, up, acc } = await start(operationTimeoutMs);
    try {
      up.script({ method: 'POST', path: '/entities/Steps', hold: true });
      const started = Date.now();
      const res = await request(o.app)
        .post(`/unified/crm/stages?integrated_account_id=${acc}`)
        .set(AUTH)
        .set('idempotency-key', 'op-deadline')
        .send({ name: 'Too slow', pipeline: { id: SALES } });
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(res.status).toBe(504);
      expect(res.body.message).toBe(
        `The operation did not finish within ${operationTimeoutMs} ms (UNICRM_OPERATION_TIMEOUT_MS): the provider answered too slowly, or this account's earlier requests held every slot. ${HINT}`,
      );
      expect(up.held).toHaveLength(1);
      const again = await request(o.app)
        .post(`/unified/crm/stages?integrated_account_id=${acc}`)
        .set(AUTH)
        .set('idempotency-key', 'op-deadline')
        .send({ name: 'Too slow', pipeline: { id: SALES } });
      expect(again.status).toBe(409);
      expect(again.body.message).toMatch(/may still be carried out by the provider/);
    } finally {
      await up.close();
      await o.close();
    }
  });

  it('answers 201 without the pipeline name when the deadline passes during the name read', async () => {
    // 3 s: the POST itself must fit (the sandbox answers it in milliseconds), the held name read does not.
    const { o, up, acc } = await start(3_000);
    try {
      up.script({ method: 'GET', path: '/entities/Pipelines/', hold: true });
      const res = await request(o.app).post(`/unified/crm/stages?integrated_account_id=${acc}`).set(AUTH).send({ name: 'Nameless', pipeline: { id: SALES } });
      expect(res.status).toBe(201);
      expect(res.body.pipeline).toEqual({ id: SALES });
      // The name read was still held when the answer went out.
      expect(up.held.map((r) => r.method)).toEqual(['GET']);
      expect(o.logs.some((line) => line.msg === 'step created, but its pipeline name could not be read' && line.status === 504)).toBe(true);
    } finally {
      await up.close();
      await o.close();
    }
  });
});

describe('one account cannot hold every connection to its provider (item 5)', () => {
  let h: Harness;
  let upstream: ScriptedUpstream;
  let accountA: string;
  let accountB: string;
  beforeAll(async () => {
    h = await startHarness({ core: { config: { bulkhead: { maxInFlight: 3, maxQueued: 2 } } } });
    upstream = await startScriptedUpstream(h.sandbox.serviceUrl);
    // Both accounts on the same provider host: one undici pool.
    accountA = await h.connect({ service_url: upstream.serviceUrl });
    accountB = await h.connect({ service_url: upstream.serviceUrl });
  });
  afterAll(async () => {
    await upstream.close();
    await h.close();
  });
  const create = (account: string, name: string) =>
    request(h.app).post(`/unified/crm/stages?integrated_account_id=${account}`).set(AUTH).send({ name, pipeline: { id: SALES } });

  it("answers B's create while A's creates are still pending; A's beyond its slots and queue get 429", async () => {
    // Pipeliner is slow for account A's creates only (held until the test releases them).
    upstream.script({ method: 'POST', path: '/entities/Steps', bodyIncludes: '"name":"A-', hold: true });
    const { order, answers, track } = arrivals();
    const a = Array.from({ length: 7 }, (_v, i) => track(`A-${i}`, create(accountA, `A-${i}`)));
    // 3 in flight at Pipeliner, 2 waiting in unicrm, 2 refused at once.
    await until(() => (order.length >= 2 && upstream.held.length >= 3) || upstream.held.length > 3);
    expect(upstream.held).toHaveLength(3);
    expect(order).toEqual([expect.stringMatching(/^A-\d 429$/), expect.stringMatching(/^A-\d 429$/)]);
    const refused = answers.get((order[0] as string).split(' ')[0] as string);
    expect(refused?.headers['retry-after']).toBe('1');
    expect(refused?.body.truto_is_remote_error).toBeUndefined();
    expect(refused?.body.message).toMatch(/^This integrated account already has 3 requests in flight to its provider and 2 waiting/);

    const b = await track('B', create(accountB, 'B-0'));
    expect(b.status).toBe(201);
    // B was answered while A's five admitted creates were all still pending.
    expect(order).toHaveLength(3);
    expect(order[2]).toBe('B 201');
    expect(upstream.held).toHaveLength(3);

    // Release A's: the three in flight answer, the two waiting then run (and are held in turn).
    for (const held of [...upstream.held]) held.release();
    await upstream.until(() => upstream.held.length === 2);
    for (const held of [...upstream.held]) held.release();
    const statuses = (await Promise.all(a)).map((res) => res.status).sort();
    expect(statuses).toEqual([201, 201, 201, 201, 201, 429, 429]);
    expect(h.sandbox.steps().filter((s) => s.name.startsWith('A-'))).toHaveLength(5);
  });
});
