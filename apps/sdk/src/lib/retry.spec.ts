import { DEFAULT_RETRY, retryAfterMs, retryDelay } from './retry';

const error = (statusCode: number, retryAfter?: string) => ({
  statusCode,
  headers: (retryAfter === undefined ? {} : { 'retry-after': retryAfter }) as Record<string, string>,
});
const keyed = { safe: false, idempotencyKey: true };
const unkeyed = { safe: false, idempotencyKey: false };
const read = { safe: true, idempotencyKey: false };
const half = () => 0.5;

describe('retryDelay', () => {
  it.each([
    ['a keyed create after a 503, first attempt', error(503), 1, 0, keyed, 250],
    ['a keyed create after a 502, second attempt', error(502), 2, 0, keyed, 500],
    ['a keyed create after a 504, third attempt', error(504), 3, 0, keyed, 1000],
    ['the backoff is capped', error(503), 3, 0, keyed, 1000],
    ['a 429 honours Retry-After in seconds', error(429, '7'), 1, 0, keyed, 7000],
    ['a 409 (first request still running) with a key', error(409, '1'), 1, 0, keyed, 1000],
    ['a read after a 503', error(503), 1, 0, read, 250],
    ['a read after a 429 with Retry-After', error(429, '2'), 1, 0, read, 2000],
  ])('retries %s', (_name, e, attempt, elapsed, repeatable, wait) => {
    expect(retryDelay(e, attempt, elapsed, repeatable, DEFAULT_RETRY, half)).toBe(wait);
  });

  it.each([
    ['a create without a key', error(503), 1, 0, unkeyed],
    ['a 409 without a key', error(409), 1, 0, read],
    ['a 400', error(400), 1, 0, keyed],
    ['a remote 422', error(422), 1, 0, keyed],
    ['a 500', error(500), 1, 0, keyed],
    ['past the attempt limit', error(503), 4, 0, keyed],
    ['past the time budget', error(429, '30'), 1, 40_000, keyed],
  ])('does not retry %s', (_name, e, attempt, elapsed, repeatable) => {
    expect(retryDelay(e, attempt, elapsed, repeatable, DEFAULT_RETRY, half)).toBeUndefined();
  });

  it('keeps the jittered wait within [0, cap)', () => {
    const policy = { ...DEFAULT_RETRY, maxRetries: 20 };
    for (let attempt = 1; attempt <= 20; attempt++) {
      expect(retryDelay(error(503), attempt, 0, keyed, policy, () => 0.999)).toBeLessThan(policy.maxDelayMs);
      expect(retryDelay(error(503), attempt, 0, keyed, policy, () => 0)).toBe(0);
    }
  });
});

describe('retryAfterMs', () => {
  it('reads seconds and HTTP dates', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs('Sun, 29 Nov 2026 20:00:10 GMT', Date.parse('Sun, 29 Nov 2026 20:00:00 GMT'))).toBe(10_000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(undefined)).toBeUndefined();
  });
});
