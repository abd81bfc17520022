import { DEFAULT_RETRY, parseHttpDate, retryAfterMs, retryDelay } from './retry';

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
    ['a 429 whose Retry-After is a fraction: the backoff', error(429, '1.5'), 2, 0, keyed, 500],
    ['a 429 whose Retry-After is negative: the backoff', error(429, '-1'), 3, 0, keyed, 1000],
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
    ['when the wait would end right at the budget', error(429, '4'), 1, 56_000, keyed],
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

describe('retryAfterMs (RFC 9110 §10.2.3: delay-seconds or an HTTP-date, else ignored)', () => {
  const now = Date.parse('2026-11-29T20:00:00.000Z');
  it.each([
    ['0', 0],
    ['5', 5000],
    ['005', 5000],
    ['2001', 2_001_000], // delay-seconds, not the year 2001
    [' 5 ', 5000], // spaces and tabs around a field value are not part of it (RFC 9110 §5.5)
    ['\t5\t', 5000],
    ['1.5', undefined], // not 1*DIGIT; Date.parse reads it as 2001-01-05
    ['-1', undefined], // Date.parse reads it as the year -1 ... or 2001
    ['+3', undefined],
    ['1e3', undefined],
    ['0x10', undefined],
    ['5 s', undefined],
    ['٥', undefined], // an Arabic-Indic digit is not an ASCII DIGIT
    ['', undefined],
    ['   ', undefined],
    ['soon', undefined],
    ['\n5', undefined],
    ['99999999999999999999999', Number.MAX_SAFE_INTEGER],
    // IMF-fixdate
    ['Sun, 06 Nov 1994 08:49:37 GMT', 0], // in the past: retry now
    ['Sun, 29 Nov 2026 20:00:30 GMT', 30_000],
    ['Mon, 30 Nov 2026 20:00:00 GMT', 86_400_000],
    ['Sun, 29 Nov 2026 20:00:30 UTC', undefined], // GMT only
    ['sun, 29 Nov 2026 20:00:30 GMT', undefined], // case-sensitive
    ['Sun, 29 nov 2026 20:00:30 GMT', undefined],
    ['Sun,  29 Nov 2026 20:00:30 GMT', undefined],
    ['Sun, 29 Nov 2026 20:00:30 GMT ', 30_000], // trailing space trimmed first
    ['Sun, 29 Nov 26 20:00:30 GMT', undefined], // a two-digit year only in the RFC 850 form
    ['Sun, 9 Nov 2026 20:00:30 GMT', undefined], // two-digit day
    ['Sun, 31 Nov 2026 20:00:30 GMT', undefined], // no 31 November
    ['Sun, 29 Feb 2027 20:00:30 GMT', undefined],
    ['Sun, 29 Nov 2026 24:00:00 GMT', undefined],
    ['Sun, 29 Nov 2026 20:60:00 GMT', undefined],
    ['Sun, 29 Nov 2026 20:00:60 GMT', 60_000], // a leap second: the next minute's first instant
    ['2026-11-29T20:00:30Z', undefined], // ISO 8601 is not an HTTP-date
    ['Sun Nov 29 2026 20:00:30 GMT+0000', undefined], // Date.prototype.toString
    ['Sun, 29 Nov 2026 20:00:30 +0000', undefined],
    // the obsolete forms a recipient must accept (RFC 9110 §5.6.7)
    ['Sunday, 29-Nov-26 20:00:30 GMT', 30_000],
    ['Sunday, 06-Nov-94 08:49:37 GMT', 0], // 94: 1994, not 2094 (more than 50 years ahead)
    ['Sun, 29-Nov-26 20:00:30 GMT', undefined], // RFC 850 spells the day out
    ['Sun Nov 29 20:00:30 2026', 30_000], // asctime
    ['Sun Dec  6 20:00:00 2026', 7 * 86_400_000],
    ['Sun Dec 6 20:00:00 2026', undefined],
  ])('reads %j as %p', (value, expected) => {
    expect(retryAfterMs(value, now)).toBe(expected);
  });

  it('reads an absent header as undefined', () => {
    expect(retryAfterMs(undefined, now)).toBeUndefined();
  });
});

describe('parseHttpDate', () => {
  it('reads the years 0000-0099 as written, not shifted by 1900', () => {
    expect(new Date(parseHttpDate('Mon, 01 Jan 0001 00:00:00 GMT') as number).toISOString()).toBe('0001-01-01T00:00:00.000Z');
  });

  it('reads a two-digit RFC 850 year within 50 years ahead as this century, else the last', () => {
    const now = Date.parse('2026-11-29T20:00:00.000Z');
    expect(new Date(parseHttpDate('Thursday, 01-Jan-76 00:00:00 GMT', now) as number).getUTCFullYear()).toBe(2076);
    expect(new Date(parseHttpDate('Friday, 01-Jan-77 00:00:00 GMT', now) as number).getUTCFullYear()).toBe(1977);
  });

  it('matches Date.parse on every valid IMF-fixdate of a sample', () => {
    for (let t = Date.parse('1990-01-01T00:00:00Z'); t < Date.parse('2040-01-01T00:00:00Z'); t += 7_777_777_777) {
      const text = new Date(t).toUTCString();
      expect(parseHttpDate(text)).toBe(Date.parse(text));
    }
  });
});
