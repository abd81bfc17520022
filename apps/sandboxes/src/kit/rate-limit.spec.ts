import type { Request } from 'express';
import { request } from 'undici';
import { SandboxHttpError } from './errors';
import { type ProviderRateLimits, RateLimitController, rateLimitFromEnv, rateLimitVariable, WindowLimiter } from './rate-limit';
import { startProviderSandbox } from './server';
import { FAKEDESK_RATE_LIMITS, fakedeskModule } from './testing/fake-provider';

/** A clock the test moves by hand (epoch ms). */
function manualClock(start = 1_700_000_000_000) {
  let now = start;
  return { now: () => now, set: (at: number) => (now = at), advance: (ms: number) => (now += ms) };
}

describe('WindowLimiter (rolling and fixed windows, per key, with costs)', () => {
  it('allows max units per rolling window, refuses the next, and frees a unit when the oldest leaves the window', () => {
    const clock = manualClock(0);
    const limiter = new WindowLimiter([{ name: 'burst', max: 3, windowMs: 1000 }], clock.now);
    for (const at of [0, 100, 200]) {
      clock.set(at);
      expect(limiter.take({ key: 'a' }).allowed).toBe(true);
    }
    clock.set(300);
    const refused = limiter.take({ key: 'a' });
    expect(refused).toEqual({
      allowed: false,
      refusedBy: 'burst',
      windows: { burst: { name: 'burst', max: 3, windowMs: 1000, used: 3, remaining: 0, resetMs: 700 } },
    });
    // Another key has its own window.
    expect(limiter.take({ key: 'b' }).windows['burst']).toMatchObject({ used: 1, remaining: 2 });
    clock.set(999);
    expect(limiter.take({ key: 'a' }).allowed).toBe(false);
    // At 1000 the unit spent at 0 has left; the refusals at 300 and 999 spent nothing.
    clock.set(1000);
    expect(limiter.take({ key: 'a' })).toMatchObject({ allowed: true, windows: { burst: { used: 3, remaining: 0, resetMs: 100 } } });
    expect(limiter.take({ key: 'a' }).allowed).toBe(false);
  });

  it('spends each window its own cost, refuses when any window lacks room (spending nothing), and shares a window through `keys`', () => {
    const clock = manualClock(0);
    const limiter = new WindowLimiter(
      [
        { name: 'burst', max: 10, windowMs: 2000 },
        { name: 'daily', max: 12, windowMs: 86_400_000, kind: 'fixed' },
      ],
      clock.now,
    );
    const call = (token: string, cost: number) => limiter.take({ key: token, keys: { daily: 'company' }, costs: { daily: cost } });
    expect(call('t1', 5).windows).toMatchObject({ burst: { used: 1 }, daily: { used: 5, remaining: 7 } });
    expect(call('t2', 5).windows).toMatchObject({ burst: { used: 1 }, daily: { used: 10, remaining: 2 } });
    const refused = call('t1', 3);
    expect(refused).toMatchObject({ allowed: false, refusedBy: 'daily', windows: { burst: { used: 1 }, daily: { used: 10 } } });
    // A cheaper request still fits; a cost of 0 spends nothing even with the window full.
    expect(call('t1', 2)).toMatchObject({ allowed: true, windows: { burst: { used: 2 }, daily: { used: 12, remaining: 0 } } });
    expect(call('t1', 0)).toMatchObject({ allowed: true, windows: { daily: { used: 12 } } });
    expect(call('t1', 1).refusedBy).toBe('daily');
  });

  it('starts a fixed window again at the next multiple of its length since the epoch (a day: midnight UTC)', () => {
    const day = 86_400_000;
    const clock = manualClock(10 * day + day - 1000);
    const limiter = new WindowLimiter([{ name: 'daily', max: 1, windowMs: day, kind: 'fixed' }], clock.now);
    expect(limiter.take({ key: 'k' }).windows['daily'].resetMs).toBe(1000);
    expect(limiter.take({ key: 'k' }).allowed).toBe(false);
    clock.advance(1000);
    expect(limiter.take({ key: 'k' })).toMatchObject({ allowed: true, windows: { daily: { used: 1, resetMs: day } } });
  });

  it('gives a key its own max where the classification says so, and forgets everything on clear()', () => {
    const limiter = new WindowLimiter([{ name: 'burst', max: 1, windowMs: 1000 }], () => 0);
    expect(limiter.take({ key: 'oauth', max: { burst: 4 } }).windows['burst']).toMatchObject({ max: 4, remaining: 3 });
    expect(limiter.take({ key: 'api' }).allowed).toBe(true);
    expect(limiter.take({ key: 'api' }).allowed).toBe(false);
    limiter.clear();
    expect(limiter.take({ key: 'api' }).allowed).toBe(true);
  });

  it('refuses windows that make no sense', () => {
    expect(() => new WindowLimiter([{ name: 'w', max: -1, windowMs: 1 }])).toThrow("Rate window 'w': max must be a whole number >= 0, got -1.");
    expect(() => new WindowLimiter([{ name: 'w', max: 1, windowMs: 0 }])).toThrow("Rate window 'w': windowMs must be a whole number > 0, got 0.");
  });
});

/** A provider declaration for the controller: keyed by the `authorization` header, a 429 with its own body. */
const declaration: ProviderRateLimits<{ max: number; windowMs: number }> = {
  defaults: { max: 2, windowMs: 1000 },
  meanings: { max: 'requests per window', windowMs: 'window in ms' },
  parse(value) {
    const input = (value ?? {}) as Record<string, unknown>;
    for (const key of Object.keys(input)) if (!['max', 'windowMs'].includes(key)) throw new Error(`${key}: unknown setting`);
    return input as { max?: number };
  },
  windows: (settings) => [{ name: 'burst', max: settings.max, windowMs: settings.windowMs }],
  classify: (req) => (typeof req.headers.authorization === 'string' ? { key: req.headers.authorization } : undefined),
  headers: (decision) => ({ 'X-Left': String(decision.windows['burst'].remaining) }),
  refusal: (decision) => new SandboxHttpError(429, { error: 'slow down', window: decision.refusedBy }),
};

const fakeRequest = (authorization?: string) => ({ method: 'GET', path: '/things', headers: authorization ? { authorization } : {} }) as unknown as Request;

describe('RateLimitController (on/off, settings, statistics)', () => {
  it('does nothing while off: no headers, no refusal, nothing counted', () => {
    const controller = new RateLimitController(declaration, {}, () => 0);
    const headers: Record<string, string> = {};
    for (let i = 0; i < 5; i += 1) expect(controller.handle(fakeRequest('k'), (name, value) => (headers[name] = value))).toBeUndefined();
    expect(headers).toEqual({});
    expect(controller.snapshot()).toMatchObject({ on: false, since: null, allowed: 0, refused: 0, refusals: [] });
  });

  it('counts per credential once on, answers the declared 429 with the headers, and records each refusal with its time', () => {
    const clock = manualClock(5_000);
    const controller = new RateLimitController(declaration, {}, clock.now);
    controller.set(true);
    const headers: Record<string, string> = {};
    const take = (key?: string) => controller.handle(fakeRequest(key), (name, value) => (headers[name] = value));
    expect(take('k')).toBeUndefined();
    expect(headers).toEqual({ 'X-Left': '1' });
    clock.advance(10);
    expect(take('k')).toBeUndefined();
    clock.advance(30);
    const refusal = take('k');
    expect(refusal).toBeInstanceOf(SandboxHttpError);
    expect(refusal).toMatchObject({ status: 429, body: { error: 'slow down', window: 'burst' } });
    expect(headers).toEqual({ 'X-Left': '0' });
    // Not counted: no credential (the provider answers 401 itself); another credential has its own window.
    expect(take()).toBeUndefined();
    expect(take('other')).toBeUndefined();
    expect(controller.snapshot()).toEqual({
      on: true,
      settings: { max: 2, windowMs: 1000 },
      windows: [{ name: 'burst', max: 2, windowMs: 1000 }],
      since: 5_000,
      allowed: 3,
      refused: 1,
      refusedBy: { burst: 1 },
      firstRequestAt: 5_000,
      refusals: [{ atMs: 40, at: 5_040, window: 'burst', method: 'GET', path: '/things' }],
    });
    controller.clear();
    expect(controller.snapshot()).toMatchObject({ on: true, since: 5_040, allowed: 0, refused: 0, refusals: [], firstRequestAt: null });
    expect(take('k')).toBeUndefined();
  });

  it('takes overrides on top of the defaults (a number is { max }), refuses unknown ones without changing anything, and switches off', () => {
    const controller = new RateLimitController(declaration, {}, () => 0);
    controller.set(5);
    expect(controller.snapshot()).toMatchObject({ on: true, settings: { max: 5, windowMs: 1000 }, windows: [{ max: 5 }] });
    controller.set({ windowMs: 50 });
    // Each set starts from the defaults: the earlier max of 5 is gone.
    expect(controller.snapshot().settings).toEqual({ max: 2, windowMs: 50 });
    expect(() => controller.set({ maxx: 3 })).toThrow('maxx: unknown setting');
    expect(() => controller.set({ max: -2 })).toThrow("Rate window 'burst': max must be a whole number >= 0, got -2.");
    expect(controller.snapshot().settings).toEqual({ max: 2, windowMs: 50 });
    controller.set(false);
    expect(controller.isOn()).toBe(false);
    expect(controller.handle(fakeRequest('k'), () => undefined)).toBeUndefined();
  });
});

describe('rateLimitFromEnv', () => {
  it('reads <PREFIX>_RATE_LIMIT as on/off and <PREFIX>_RATE_LIMIT_<KEY> as overrides', () => {
    expect(rateLimitVariable('FAKE', 'windowMs')).toBe('FAKE_RATE_LIMIT_WINDOW_MS');
    expect(rateLimitFromEnv('FAKE', declaration, {})).toBe(false);
    expect(rateLimitFromEnv('FAKE', declaration, { FAKE_RATE_LIMIT: 'off' })).toBe(false);
    expect(rateLimitFromEnv('FAKE', declaration, { FAKE_RATE_LIMIT: ' Yes ' })).toEqual({});
    expect(rateLimitFromEnv('FAKE', declaration, { FAKE_RATE_LIMIT: '1', FAKE_RATE_LIMIT_MAX: '10', FAKE_RATE_LIMIT_WINDOW_MS: '500' })).toEqual({ max: 10, windowMs: 500 });
  });

  it('refuses a number where on/off is expected (the old way to set the limit), naming the _MAX variable', () => {
    expect(() => rateLimitFromEnv('FAKE', declaration, { FAKE_RATE_LIMIT: '190' })).toThrow(
      "FAKE_RATE_LIMIT switches the rate limits on or off (1/0, true/false, yes/no, on/off), not '190'; the number of requests is FAKE_RATE_LIMIT_MAX.",
    );
  });
});

describe('the kit with a module that declares rate limits (Fakedesk)', () => {
  const module = fakedeskModule();
  const call = async (url: string, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, key = 'fake-key') => {
    const res = await request(`${url}${path}`, {
      method,
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, json: text ? JSON.parse(text) : undefined };
  };

  it('is off by default: no headers and no 429, whatever the number of requests', async () => {
    const sandbox = await startProviderSandbox(module, { port: 0 });
    try {
      for (let i = 0; i < FAKEDESK_RATE_LIMITS.defaults.max + 2; i += 1) {
        const answer = await call(sandbox.url, 'GET', '/v1/things');
        expect(answer.status).toBe(200);
        expect(answer.headers['x-fake-limit']).toBeUndefined();
      }
      expect((await call(sandbox.url, 'GET', '/__sandbox/rate-limit')).json.data).toMatchObject({ on: false, allowed: 0, refused: 0 });
    } finally {
      await sandbox.close();
    }
  });

  it('is switched on by the option, counts costs, answers the module 429, and the admin route reads, switches and clears it', async () => {
    const sandbox = await startProviderSandbox(module, { port: 0, rateLimit: { postCost: 2 } });
    try {
      const first = await call(sandbox.url, 'POST', '/v1/things', { name: 'A' });
      expect(first.status).toBe(201);
      expect(first.headers).toMatchObject({ 'x-fake-limit': '3', 'x-fake-remaining': '1' });
      expect((await call(sandbox.url, 'GET', '/v1/things')).headers['x-fake-remaining']).toBe('0');
      const refused = await call(sandbox.url, 'POST', '/v1/things', { name: 'B' });
      expect(refused).toMatchObject({ status: 429, json: { error: { type: 'rate_limited', message: 'Slow down.' } } });
      expect(refused.headers['x-fake-remaining']).toBe('0');
      // A wrong key is not counted: the module answers its 401.
      expect((await call(sandbox.url, 'GET', '/v1/things', undefined, 'wrong')).status).toBe(401);
      // The refused create wrote nothing.
      expect(sandbox.instance.things().map((thing) => thing.name)).toEqual(['First', 'A']);

      const stats = (await call(sandbox.url, 'GET', '/__sandbox/rate-limit')).json.data;
      expect(stats).toMatchObject({ on: true, settings: { max: 3, windowMs: 60_000, postCost: 2 }, allowed: 2, refused: 1, refusedBy: { requests: 1 } });
      expect(stats.refusals).toEqual([{ atMs: expect.any(Number), at: expect.any(Number), window: 'requests', method: 'POST', path: '/v1/things' }]);
      expect(stats.refusals[0].at - stats.since).toBe(stats.refusals[0].atMs);

      // Switched again with other settings: counters start afresh.
      const posted = await call(sandbox.url, 'POST', '/__sandbox/rate-limit', { on: true, max: 1 });
      expect(posted).toMatchObject({ status: 200, json: { success: true, data: { on: true, settings: { max: 1, postCost: 1 }, allowed: 0, refused: 0 } } });
      expect((await call(sandbox.url, 'GET', '/v1/things')).status).toBe(200);
      expect((await call(sandbox.url, 'GET', '/v1/things')).status).toBe(429);
      // Bad requests answer the module's 400 and change nothing.
      expect(await call(sandbox.url, 'POST', '/__sandbox/rate-limit', { on: true, maxx: 1 })).toMatchObject({
        status: 400,
        json: { error: { type: 'bad_request', message: 'Invalid rate-limit settings: maxx: unknown setting' } },
      });
      expect((await call(sandbox.url, 'POST', '/__sandbox/rate-limit', { max: 1 })).status).toBe(400);
      expect((await call(sandbox.url, 'POST', '/__sandbox/rate-limit', { on: false, max: 1 })).status).toBe(400);
      // DELETE clears the counters; reset() too; both keep the limits on.
      expect((await call(sandbox.url, 'DELETE', '/__sandbox/rate-limit')).json.data).toMatchObject({ on: true, allowed: 0, refused: 0 });
      expect((await call(sandbox.url, 'GET', '/v1/things')).status).toBe(200);
      sandbox.reset();
      expect(sandbox.rateLimits.snapshot()).toMatchObject({ on: true, allowed: 0 });
      expect((await call(sandbox.url, 'GET', '/v1/things')).status).toBe(200);
      // Off: answered as before.
      expect((await call(sandbox.url, 'POST', '/__sandbox/rate-limit', { on: false })).json.data).toMatchObject({ on: false });
      const off = await call(sandbox.url, 'GET', '/v1/things');
      expect(off.status).toBe(200);
      expect(off.headers['x-fake-limit']).toBeUndefined();
    } finally {
      await sandbox.close();
    }
  });

  it('a status fault answers without being counted', async () => {
    const sandbox = await startProviderSandbox(module, { port: 0, rateLimit: 1 });
    try {
      sandbox.injectFault({ status: 503, times: 2 });
      expect((await call(sandbox.url, 'GET', '/v1/things')).status).toBe(503);
      expect((await call(sandbox.url, 'GET', '/v1/things')).status).toBe(503);
      expect((await call(sandbox.url, 'GET', '/v1/things')).status).toBe(200);
      expect(sandbox.rateLimits.snapshot()).toMatchObject({ allowed: 1, refused: 0 });
    } finally {
      await sandbox.close();
    }
  });
});
