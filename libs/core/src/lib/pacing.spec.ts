import { type HttpRequest, type HttpResponse, type HttpTransport, UnicrmError } from '@unicrm/model';
import { PacedTransport, Pacer, type PacingTag, readRateLimitHeaders, retryAfterHeaderMs } from './pacing';

/**
 * A provider with a rolling-window limit (`limit` requests per `windowMs`, counted when a request arrives, a refused
 * request not counted), answering after `latencyMs` with HubSpot's or the X-RateLimit headers. Runs on jest's fake
 * clock.
 */
class RollingWindowProvider implements HttpTransport {
  readonly arrivals: number[] = [];
  readonly refusals: number[] = [];
  private readonly accepted: number[] = [];

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly family: 'hubspot' | 'x-ratelimit' | 'none',
    private readonly latencyMs = 20,
    private readonly retryAfterSeconds?: number,
  ) {}

  async request(_request: HttpRequest): Promise<HttpResponse> {
    const now = Date.now();
    this.arrivals.push(now);
    while (this.accepted.length > 0 && (this.accepted[0] as number) <= now - this.windowMs) this.accepted.shift();
    const refused = this.accepted.length >= this.limit;
    if (refused) this.refusals.push(now);
    else this.accepted.push(now);
    const remaining = this.limit - this.accepted.length;
    const resetSeconds = this.accepted.length > 0 ? Math.ceil(((this.accepted[0] as number) + this.windowMs - now) / 1000) : 0;
    const headers: Record<string, string> =
      this.family === 'hubspot'
        ? { 'x-hubspot-ratelimit-max': String(this.limit), 'x-hubspot-ratelimit-remaining': String(remaining), 'x-hubspot-ratelimit-interval-milliseconds': String(this.windowMs) }
        : this.family === 'x-ratelimit'
          ? { 'x-ratelimit-limit': String(this.limit), 'x-ratelimit-remaining': String(remaining), 'x-ratelimit-reset': String(resetSeconds) }
          : {};
    if (refused && this.retryAfterSeconds !== undefined) headers['retry-after'] = String(this.retryAfterSeconds);
    await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    return { status: refused ? 429 : 200, headers, bodyText: refused ? '{"status":"error"}' : '{}' };
  }

  /** The most requests accepted in any window of `windowMs` (ending at an arrival). */
  busiestWindow(): number {
    const accepted = this.arrivals.filter((at) => !this.refusals.includes(at) || false);
    let most = 0;
    for (let i = 0; i < accepted.length; i += 1) {
      const end = accepted[i] as number;
      most = Math.max(most, accepted.filter((at) => at > end - this.windowMs && at <= end).length);
    }
    return most;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const BULK = (key = 'env:acct'): PacingTag => ({ key, priority: 'bulk' });
const INTERACTIVE = (key = 'env:acct'): PacingTag => ({ key, priority: 'interactive' });

/** Sends `n` calls at once through `transport` with `tag`, each with its own signal; resolves to their statuses. */
function sendMany(transport: PacedTransport, pacer: Pacer, tag: PacingTag, n: number): Promise<number[]> {
  return Promise.all(
    Array.from({ length: n }, () => {
      const controller = new AbortController();
      pacer.tag(controller.signal, tag);
      return transport.request({ method: 'POST', url: 'http://127.0.0.1:1/x', headers: {}, signal: controller.signal }).then((r) => r.status);
    }),
  );
}

describe('readRateLimitHeaders', () => {
  const now = Date.parse('2026-12-01T10:00:00Z');

  it("reads HubSpot's headers (hubspot-api.md §1.6), and a spent daily budget", () => {
    expect(
      readRateLimitHeaders(
        { 'x-hubspot-ratelimit-max': '190', 'x-hubspot-ratelimit-remaining': '187', 'x-hubspot-ratelimit-interval-milliseconds': '10000', 'x-hubspot-ratelimit-daily-remaining': '0' },
        now,
      ),
    ).toEqual({ limit: 190, remaining: 187, windowMs: 10_000, budgetSpent: true });
    expect(readRateLimitHeaders({ 'x-hubspot-ratelimit-secondly': '10', 'x-hubspot-ratelimit-secondly-remaining': '9' }, now)).toEqual({ limit: 10, remaining: 9, windowMs: 1000 });
  });

  it("reads X-RateLimit-* (Pipedrive's burst window) with a reset in seconds or as a Unix time, and the token budget", () => {
    expect(readRateLimitHeaders({ 'x-ratelimit-limit': '40', 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': '2' }, now)).toEqual({ limit: 40, remaining: 3, resetMs: 2000 });
    expect(readRateLimitHeaders({ 'x-ratelimit-limit': '40', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now / 1000 + 5) }, now)).toEqual({ limit: 40, remaining: 0, resetMs: 5000 });
    expect(readRateLimitHeaders({ 'x-daily-ratelimit-token-remaining': '0' }, now)).toEqual({ budgetSpent: true });
  });

  it("reads the IETF draft's RateLimit-* with RateLimit-Policy's window, and Retry-After as seconds or a date", () => {
    expect(readRateLimitHeaders({ 'ratelimit-limit': '60', 'ratelimit-remaining': '59', 'ratelimit-reset': '10', 'ratelimit-policy': '60;w=10' }, now)).toEqual({
      limit: 60,
      remaining: 59,
      resetMs: 10_000,
      windowMs: 10_000,
    });
    expect(retryAfterHeaderMs({ 'retry-after': '3' }, now)).toBe(3000);
    expect(retryAfterHeaderMs({ 'retry-after': 'Tue, 01 Dec 2026 10:00:07 GMT' }, now)).toBe(7000);
    expect(retryAfterHeaderMs({ 'retry-after': 'soon' }, now)).toBeUndefined();
    // Not Date.parse, which reads "1.5" as a day in 2001 (a wait of years, or of nothing).
    expect(retryAfterHeaderMs({ 'retry-after': '1.5' }, now)).toBeUndefined();
    expect(readRateLimitHeaders({ 'x-ratelimit-limit': 'many' }, now)).toEqual({});
  });
});

describe('PacedTransport and Pacer', () => {
  beforeEach(() => jest.useFakeTimers({ now: Date.parse('2026-12-01T10:00:00Z') }));
  afterEach(() => jest.useRealTimers());

  it.each(['hubspot', 'x-ratelimit'] as const)(
    'sends 300 calls at the learned rate with no 429 and no window over the limit (%s headers)',
    async (family) => {
      const provider = new RollingWindowProvider(20, 2000, family);
      const pacer = new Pacer();
      const transport = new PacedTransport(provider, pacer);
      const started = Date.now();
      const statuses = sendMany(transport, pacer, BULK(), 300);
      await jest.runAllTimersAsync();
      expect(await statuses).toEqual(Array(300).fill(200));
      expect(provider.refusals).toEqual([]);
      expect(provider.busiestWindow()).toBeLessThanOrEqual(20);
      expect(pacer.state('env:acct')).toMatchObject({ limit: 20, windowMs: 2000 });
      // The ceiling is 10 calls a second: 300 take at least 29 s; paced at 95 % of it they take under 34 s.
      const seconds = (Date.now() - started) / 1000;
      expect(seconds).toBeGreaterThanOrEqual(29);
      expect(seconds).toBeLessThan(34);
    },
  );

  it('grants an interactive call before the bulk calls already waiting', async () => {
    const provider = new RollingWindowProvider(10, 1000, 'hubspot');
    const pacer = new Pacer();
    const transport = new PacedTransport(provider, pacer);
    const order: string[] = [];
    const bulk = sendMany(transport, pacer, BULK(), 40).then(() => order.push('bulk done'));
    await jest.advanceTimersByTimeAsync(500);
    const controller = new AbortController();
    pacer.tag(controller.signal, INTERACTIVE());
    const interactive = transport.request({ method: 'GET', url: 'http://127.0.0.1:1/x', headers: {}, signal: controller.signal }).then((response) => {
      order.push(`interactive after ${provider.arrivals.length - 1} calls`);
      return response.status;
    });
    await jest.runAllTimersAsync();
    expect(await interactive).toBe(200);
    await bulk;
    // It went with the next free turn: at most a few bulk calls were sent between its arrival and its turn.
    const [first] = order;
    const sentBefore = Number(/after (\d+) calls/.exec(first ?? '')?.[1]);
    expect(first).toMatch(/^interactive/);
    expect(sentBefore).toBeLessThan(12);
    expect(provider.refusals).toEqual([]);
  });

  it('waits out a 429 with Retry-After and sends the call again; the others wait too', async () => {
    // Another client used the budget: the provider refuses although the pacer has not sent anything yet.
    const provider = new RollingWindowProvider(2, 1000, 'none', 10, 2);
    const pacer = new Pacer();
    const transport = new PacedTransport(provider, pacer);
    const statuses = sendMany(transport, pacer, BULK(), 5);
    await jest.runAllTimersAsync();
    expect(await statuses).toEqual(Array(5).fill(200));
    expect(provider.refusals.length).toBeGreaterThan(0);
    // After a refusal nothing was sent before its Retry-After (2 s) had passed.
    for (const refusedAt of provider.refusals) {
      const next = provider.arrivals.find((at) => at > refusedAt);
      if (next !== undefined) expect(next - refusedAt).toBeGreaterThanOrEqual(2000);
    }
  });

  it('answers the 429 when its Retry-After is longer than the pacer waits', async () => {
    const provider = new RollingWindowProvider(0, 1000, 'none', 1, 3600);
    const pacer = new Pacer();
    const transport = new PacedTransport(provider, pacer);
    const statuses = sendMany(transport, pacer, BULK(), 1);
    await jest.advanceTimersByTimeAsync(100);
    expect(await statuses).toEqual([429]);
    expect(provider.arrivals).toHaveLength(1);
  });

  it('does not hold interactive calls before the limit is known, even behind a slow first answer', async () => {
    const provider = new RollingWindowProvider(1000, 1000, 'hubspot', 500);
    const pacer = new Pacer();
    const transport = new PacedTransport(provider, pacer);
    const statuses = sendMany(transport, pacer, INTERACTIVE(), 5);
    await jest.advanceTimersByTimeAsync(10);
    expect(provider.arrivals).toHaveLength(5);
    await jest.runAllTimersAsync();
    expect(await statuses).toEqual(Array(5).fill(200));
  });

  it('sends bulk calls one at a time until an answer tells the limit; with no headers, the account is not paced', async () => {
    const provider = new RollingWindowProvider(1000, 1000, 'none', 50);
    const pacer = new Pacer();
    const transport = new PacedTransport(provider, pacer);
    const statuses = sendMany(transport, pacer, BULK(), 10);
    await jest.advanceTimersByTimeAsync(10);
    expect(provider.arrivals).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(50);
    expect(provider.arrivals).toHaveLength(10);
    await jest.runAllTimersAsync();
    expect(await statuses).toEqual(Array(10).fill(200));
  });

  it('answers 429 with Retry-After at once, without sending, when an interactive call would wait more than 5 s', async () => {
    const provider = new RollingWindowProvider(2, 20_000, 'hubspot', 1);
    const pacer = new Pacer();
    const transport = new PacedTransport(provider, pacer);
    const first = sendMany(transport, pacer, INTERACTIVE(), 1);
    await jest.advanceTimersByTimeAsync(5);
    expect(await first).toEqual([200]);
    const error = (await sendMany(transport, pacer, INTERACTIVE(), 1).catch((e: unknown) => e)) as UnicrmError;
    expect(error).toBeInstanceOf(UnicrmError);
    expect(error.statusCode).toBe(429);
    expect(Number(error.headers['retry-after'])).toBeGreaterThan(5);
    expect(error.isRemote).toBe(false);
    expect(provider.arrivals).toHaveLength(1);
    // A bulk call may wait longer (30 s): it waits for its turn instead.
    const bulk = sendMany(transport, pacer, BULK(), 1);
    await jest.advanceTimersByTimeAsync(21_000);
    expect(await bulk).toEqual([200]);
    expect(provider.refusals).toEqual([]);
  });

  it('refuses at once, without sending, once the provider reports the daily budget spent', async () => {
    const inner: HttpTransport = {
      request: jest.fn(async () => ({ status: 200, headers: { 'x-daily-ratelimit-token-remaining': '0' }, bodyText: '{}' })),
      close: async () => undefined,
    };
    const pacer = new Pacer();
    const transport = new PacedTransport(inner, pacer);
    expect(await sendMany(transport, pacer, INTERACTIVE(), 1)).toEqual([200]);
    const error = await sendMany(transport, pacer, INTERACTIVE(), 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnicrmError);
    expect((error as UnicrmError).statusCode).toBe(429);
    expect(inner.request).toHaveBeenCalledTimes(1);
  });

  it('passes untagged calls through, and keeps accounts apart', async () => {
    const provider = new RollingWindowProvider(2, 1000, 'hubspot', 1);
    const pacer = new Pacer();
    const transport = new PacedTransport(provider, pacer);
    const untagged = transport.request({ method: 'GET', url: 'http://127.0.0.1:1/x', headers: {} });
    await jest.advanceTimersByTimeAsync(5);
    expect((await untagged).status).toBe(200);
    expect(pacer.state('env:a')).toBeUndefined();
    const a = sendMany(transport, pacer, BULK('env:a'), 2);
    const b = sendMany(transport, pacer, BULK('env:b'), 2);
    await jest.runAllTimersAsync();
    await Promise.all([a, b]);
    expect(pacer.state('env:a')).toMatchObject({ limit: 2 });
    expect(pacer.state('env:b')).toMatchObject({ limit: 2 });
  });

  /** A provider answering 200 with `headers` to every call. */
  const answering = (headers: Record<string, string>) => {
    const inner = { request: jest.fn(async () => ({ status: 200, headers, bodyText: '{}' })), close: async () => undefined };
    return inner;
  };

  it.each([
    ['HubSpot interval of 0 ms', { 'x-hubspot-ratelimit-max': '100', 'x-hubspot-ratelimit-remaining': '99', 'x-hubspot-ratelimit-interval-milliseconds': '0' }],
    ['RateLimit-Policy window of 0 s', { 'ratelimit-limit': '100', 'ratelimit-remaining': '99', 'ratelimit-policy': '100;w=0' }],
  ])('does not hold calls forever when the provider states a window of zero (%s)', async (_name, headers) => {
    const inner = answering(headers);
    const pacer = new Pacer();
    const transport = new PacedTransport(inner, pacer);
    expect(await sendMany(transport, pacer, INTERACTIVE(), 1)).toEqual([200]);
    const bulk = sendMany(transport, pacer, BULK(), 5);
    let settled = false;
    void bulk.finally(() => (settled = true));
    await jest.advanceTimersByTimeAsync(60_000);
    expect(settled).toBe(true);
    expect(await bulk).toEqual(Array(5).fill(200));
    expect(inner.request).toHaveBeenCalledTimes(6);
  });

  it('does not believe a reset beyond a day (a Unix time in milliseconds): the account keeps its turns', async () => {
    // 1.8e12 read as Unix seconds is 57 000 years away: the window must not be learned from it.
    const inner = answering({ 'x-ratelimit-limit': '100', 'x-ratelimit-remaining': '99', 'x-ratelimit-reset': String(Date.parse('2026-12-01T10:00:02Z')) });
    const pacer = new Pacer();
    const transport = new PacedTransport(inner, pacer);
    expect(await sendMany(transport, pacer, INTERACTIVE(), 1)).toEqual([200]);
    const next = sendMany(transport, pacer, INTERACTIVE(), 3).catch((error: unknown) => error);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(await next).toEqual([200, 200, 200]);
    expect(pacer.state('env:acct')?.windowMs).toBeLessThanOrEqual(86_400_000);
  });

  it('does not believe a Retry-After beyond a day: the call is sent again after a short backoff', async () => {
    let calls = 0;
    const inner = {
      request: jest.fn(async (): Promise<HttpResponse> => {
        calls += 1;
        return calls === 1 ? { status: 429, headers: { 'retry-after': '999999999' }, bodyText: '{}' } : { status: 200, headers: {}, bodyText: '{}' };
      }),
      close: async () => undefined,
    };
    const pacer = new Pacer();
    const transport = new PacedTransport(inner, pacer);
    const first = sendMany(transport, pacer, BULK(), 1);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(await first).toEqual([200]);
    expect(await sendMany(transport, pacer, INTERACTIVE(), 1)).toEqual([200]);
    expect(inner.request).toHaveBeenCalledTimes(3);
  });

  it('refuses at once the interactive calls of a burst that would wait over 5 s, and holds only the others', async () => {
    const provider = new RollingWindowProvider(10, 10_000, 'hubspot', 1);
    const pacer = new Pacer();
    const transport = new PacedTransport(provider, pacer);
    await Promise.all([sendMany(transport, pacer, INTERACTIVE(), 1), jest.advanceTimersByTimeAsync(5)]);
    const outcomes: Array<number | string> = [];
    const burst = Array.from({ length: 200 }, () =>
      sendMany(transport, pacer, INTERACTIVE(), 1).then(
        ([status]) => outcomes.push(status as number),
        (error: UnicrmError) => outcomes.push(`refused ${error.statusCode}`),
      ),
    );
    await jest.advanceTimersByTimeAsync(0);
    const refusedAtOnce = outcomes.filter((o) => o === 'refused 429').length;
    expect(refusedAtOnce).toBeGreaterThanOrEqual(190);
    await jest.advanceTimersByTimeAsync(6_000);
    await Promise.all(burst);
    expect(outcomes.filter((o) => o === 200).length + refusedAtOnce).toBe(200);
    expect(provider.refusals).toEqual([]);
    expect(pacer.state('env:acct')?.waiting).toBe(0);
  });

  it('keeps an account stopped by a 429 when 10 000 others push the least recently used out', async () => {
    const pacer = new Pacer();
    const blocked = INTERACTIVE('env:blocked');
    const sequence = await pacer.acquire(blocked);
    pacer.observe(blocked, sequence, { status: 429, headers: { 'retry-after': '60' } });
    for (let n = 0; n < 10_000; n += 1) await pacer.acquire(INTERACTIVE(`env:other-${n}`));
    expect(pacer.state('env:blocked')).toBeDefined();
    expect(pacer.state('env:other-0')).toBeUndefined();
    await expect(pacer.acquire(blocked)).rejects.toMatchObject({ statusCode: 429 });
  });

  it('stops waiting when the call is aborted', async () => {
    const provider = new RollingWindowProvider(1, 10_000, 'hubspot', 1);
    const pacer = new Pacer();
    const transport = new PacedTransport(provider, pacer);
    await Promise.all([sendMany(transport, pacer, BULK(), 1), jest.advanceTimersByTimeAsync(5)]);
    const controller = new AbortController();
    pacer.tag(controller.signal, BULK());
    const waiting = transport.request({ method: 'GET', url: 'http://127.0.0.1:1/x', headers: {}, signal: controller.signal });
    controller.abort(new Error('deadline'));
    await expect(waiting).rejects.toThrow('deadline');
    expect(pacer.state('env:acct')?.waiting).toBe(0);
  });
});
