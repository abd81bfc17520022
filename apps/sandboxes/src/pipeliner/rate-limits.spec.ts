import { type RateLimitRequest, startSandbox, type RunningSandbox } from '../index';
import { PIPELINER_RATE_LIMITS } from './rate-limits';
import { client } from './testing/client';

describe("the Pipeliner sandbox's rate limits (assumed: Pipeliner documents none)", () => {
  let sandbox: RunningSandbox;
  let call: ReturnType<typeof client>;
  afterEach(async () => {
    expect(sandbox.takeContractViolations()).toEqual([]);
    await sandbox.close();
  });
  const start = async (rateLimit?: RateLimitRequest) => {
    sandbox = await startSandbox({ port: 0, contract: true, rateLimit });
    call = client(sandbox);
  };

  it('sends the IETF draft RateLimit headers on every counted answer once on; bad credentials are not counted', async () => {
    await start(true);
    const first = await call('GET', 'Steps');
    expect(first.status).toBe(200);
    expect(first.headers).toMatchObject({ 'ratelimit-limit': '60', 'ratelimit-remaining': '59', 'ratelimit-policy': '60;w=10' });
    expect(Number(first.headers['ratelimit-reset'])).toBeGreaterThanOrEqual(1);
    expect(Number(first.headers['ratelimit-reset'])).toBeLessThanOrEqual(10);
    const unauthorized = await call('GET', 'Steps', { auth: ['sandbox-api-token', 'wrong'] });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers['ratelimit-limit']).toBeUndefined();
    const otherSpace = await call('GET', '/api/v100/rest/spaces/other_space/entities/Steps', { rawPath: true });
    expect(otherSpace.status).toBe(401);
    expect(sandbox.rateLimits.snapshot()).toMatchObject({ on: true, allowed: 1, settings: PIPELINER_RATE_LIMITS });
  });

  it("answers Pipeliner's 429 (code 130, Retry-After) after max requests, a batch counting as one, and writes nothing", async () => {
    await start({ max: 2, windowMs: 60_000 });
    const batch = await call('POST', 'Steps/batch-modify', { body: [{ name: 'One' }, { name: 'Two' }, { name: 'Three' }] });
    expect(batch.status).toBe(200);
    expect(batch.headers['ratelimit-remaining']).toBe('1');
    expect((await call('GET', 'Steps')).status).toBe(200);
    const over = await call('POST', 'Steps', { body: { name: 'Too fast' } });
    expect(over.status).toBe(429);
    expect(over.json).toEqual({ code: 130, name: 'ERROR_RATE_LIMIT_EXCEEDED', message: 'Too many requests. Please retry later.', http_status: 429, success: false });
    expect(over.headers['ratelimit-remaining']).toBe('0');
    expect(Number(over.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(over.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(sandbox.steps().some((step) => step.name === 'Too fast')).toBe(false);
    const stats = sandbox.rateLimits.snapshot();
    expect(stats).toMatchObject({ allowed: 2, refused: 1, refusedBy: { requests: 1 } });
    expect(stats.refusals[0]).toMatchObject({ window: 'requests', method: 'POST', path: `/api/v100/rest/spaces/${sandbox.spaceId}/entities/Steps` });
  });

  it('refuses a batch over batchMax with a 400 naming the limit (only while the limits are on), writing nothing', async () => {
    await start({ batchMax: 3 });
    const items = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `Batch ${i}` }));
    const over = await call('POST', 'Steps/batch-modify', { body: items(4) });
    expect(over.status).toBe(400);
    expect(over.json).toEqual({
      code: 117,
      name: 'ERROR_PARAMETER_INVALID',
      message: 'Too many items in one batch: 4. At most 3 items are accepted per request.',
      http_status: 400,
      success: false,
    });
    expect(sandbox.steps().some((step) => step.name === 'Batch 0')).toBe(false);
    const ids = (await call('POST', 'Steps/batch-modify', { body: items(3) })).json.data as string[];
    expect(ids).toHaveLength(3);
    expect((await call('POST', 'Steps/batch-delete', { body: [...ids, ids[0]] })).status).toBe(400);
    expect((await call('POST', 'Steps/batch-delete', { body: ids })).status).toBe(200);
    // Off: any size, as before.
    sandbox.rateLimits.set(false);
    expect((await call('POST', 'Steps/batch-modify', { body: items(4) })).status).toBe(200);
  });

  it('is off by default; the admin route switches it on and off', async () => {
    await start();
    expect((await call('GET', 'Steps')).headers['ratelimit-limit']).toBeUndefined();
    const on = await call('POST', '/__sandbox/rate-limit', { rawPath: true, auth: false, body: { on: true, max: 1 } });
    expect(on.json).toMatchObject({ success: true, data: { on: true, settings: { max: 1, windowMs: 10_000, batchMax: 100 } } });
    expect((await call('GET', 'Steps')).status).toBe(200);
    expect((await call('GET', 'Steps')).status).toBe(429);
    const stats = await call('GET', '/__sandbox/rate-limit', { rawPath: true, auth: false });
    expect(stats.json.data).toMatchObject({ allowed: 1, refused: 1 });
    expect((await call('POST', '/__sandbox/rate-limit', { rawPath: true, auth: false, body: { on: true, batchMax: 0 } })).json).toMatchObject({
      code: 117,
      message: expect.stringContaining('batchMax'),
    });
    await call('POST', '/__sandbox/rate-limit', { rawPath: true, auth: false, body: { on: false } });
    expect((await call('GET', 'Steps')).status).toBe(200);
  });
});
