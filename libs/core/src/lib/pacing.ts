import { type HttpRequest, type HttpResponse, type HttpTransport, retryAfterMs, UnicrmError } from '@unicrm/model';

/*
 * Adaptive pacing per integrated account (issue 18; docs/contract.md "Pacing"). Every provider call of an operation
 * waits here for its turn: a token bucket per account whose rate and size it learns from the provider's own
 * rate-limit headers, so bulk work runs at the provider's ceiling without running into 429s, and ordinary calls of the
 * same account go before bulk ones.
 */

/** Who a provider call is made for: the account it counts against, and whether it may wait behind others. */
export interface PacingTag {
  /** The account's pacing key (environment and integrated account id). */
  key: string;
  /**
   * `interactive` (an ordinary unified or proxy call) is granted before every waiting `bulk` call (the items of a
   * batch), so a bulk job cannot starve the account's other calls.
   */
  priority: 'interactive' | 'bulk';
}

/**
 * What a provider said about its rate limit in one answer (all durations in ms, all optional):
 * - `limit` and `windowMs`: how many requests one window allows, and its length;
 * - `remaining`: how many more this window allows, as of the answer;
 * - `resetMs`: in how long the window (or its oldest request) frees room;
 * - `retryAfterMs`: `Retry-After` (RFC 9110 §10.2.3: seconds or an HTTP date);
 * - `budgetSpent`: a daily budget reports nothing left (HubSpot's `X-HubSpot-RateLimit-Daily-Remaining: 0`,
 *   Pipedrive's `x-daily-ratelimit-token-remaining: 0`).
 */
export interface RateLimitReading {
  limit?: number;
  windowMs?: number;
  remaining?: number;
  resetMs?: number;
  retryAfterMs?: number;
  budgetSpent?: boolean;
}

type Headers = HttpResponse['headers'];

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function count(headers: Headers, name: string): number | undefined {
  const text = header(headers, name)?.trim();
  if (text === undefined || !/^\d+(?:\.\d+)?$/.test(text)) return undefined;
  return Number(text);
}

/**
 * `Retry-After` of an answer in ms from `now` ({@link retryAfterMs} of `@unicrm/model`: delay-seconds or an RFC 9110
 * HTTP-date); undefined when absent or unreadable.
 */
export function retryAfterHeaderMs(headers: Headers, now: number): number | undefined {
  return retryAfterMs(header(headers, 'retry-after'), now);
}

/** The longest reset believed (24 h): daily budgets are read from their own headers. */
const MAX_RESET_MS = 86_400_000;

/**
 * A reset header's value in ms from `now`: seconds to wait, or (above 10^9) a Unix time in seconds; undefined
 * beyond {@link MAX_RESET_MS}.
 */
function resetIn(seconds: number | undefined, now: number): number | undefined {
  if (seconds === undefined) return undefined;
  const ms = seconds > 1e9 ? Math.max(0, seconds * 1000 - now) : seconds * 1000;
  // Beyond a day it is no window's reset (a Unix time in milliseconds, garbage): learning a window from it would
  // leave the account almost no turns.
  return ms > MAX_RESET_MS ? undefined : ms;
}

/** A window in milliseconds, when stated and positive (a window of 0 would never refill the bucket). */
function positive(value: number | undefined): number | undefined {
  return value !== undefined && value > 0 ? value : undefined;
}

/**
 * Reads the rate-limit headers of one answer, whichever family the provider sends (lower-case names, as undici gives
 * them):
 * - HubSpot: `X-HubSpot-RateLimit-Max`, `-Remaining`, `-Interval-Milliseconds` (hubspot-api.md §1.6), the legacy
 *   `-Secondly` / `-Secondly-Remaining` (a one-second window), and `-Daily-Remaining`;
 * - `X-RateLimit-Limit`, `-Remaining`, `-Reset` (Pipedrive's burst window, pipedrive-api.md §2.7, and many others; a
 *   reset above 10^9 is a Unix time), and Pipedrive's `x-daily-ratelimit-token-remaining`;
 * - the IETF draft's `RateLimit-Limit`, `-Remaining`, `-Reset` and `RateLimit-Policy` (`<limit>;w=<seconds>`);
 * - `Retry-After`.
 * @param now epoch ms the answer arrived at
 */
export function readRateLimitHeaders(headers: Headers, now: number): RateLimitReading {
  const reading: RateLimitReading = {};
  const hubspotMax = count(headers, 'x-hubspot-ratelimit-max');
  if (hubspotMax !== undefined) {
    reading.limit = hubspotMax;
    reading.remaining = count(headers, 'x-hubspot-ratelimit-remaining');
    reading.windowMs = positive(count(headers, 'x-hubspot-ratelimit-interval-milliseconds')) ?? 10_000;
  } else if (count(headers, 'x-hubspot-ratelimit-secondly') !== undefined) {
    reading.limit = count(headers, 'x-hubspot-ratelimit-secondly');
    reading.remaining = count(headers, 'x-hubspot-ratelimit-secondly-remaining');
    reading.windowMs = 1000;
  } else {
    const family = count(headers, 'x-ratelimit-limit') !== undefined ? 'x-ratelimit' : count(headers, 'ratelimit-limit') !== undefined ? 'ratelimit' : undefined;
    if (family) {
      reading.limit = count(headers, `${family}-limit`);
      reading.remaining = count(headers, `${family}-remaining`);
      reading.resetMs = resetIn(count(headers, `${family}-reset`), now);
      const window = /;\s*w=(\d+)/.exec(header(headers, 'ratelimit-policy') ?? '')?.[1];
      if (window !== undefined && Number(window) > 0) reading.windowMs = Number(window) * 1000;
    }
  }
  if (count(headers, 'x-hubspot-ratelimit-daily-remaining') === 0 || count(headers, 'x-daily-ratelimit-token-remaining') === 0) reading.budgetSpent = true;
  const after = retryAfterHeaderMs(headers, now);
  // Beyond a day, as a reset: not believed (it would keep the account blocked until unicrm restarts).
  if (after !== undefined && after <= MAX_RESET_MS) reading.retryAfterMs = after;
  return reading;
}

/** Tuning of the {@link Pacer} (defaults in brackets). */
export interface PacerOptions {
  /** The share of the provider's limit the bucket refills at [0.95]: the rest absorbs clock skew and other clients. */
  share?: number;
  /** The bucket's size as a share of the limit [0.05]: bursts up to it, never more than the limit in any window. */
  burstShare?: number;
  /** The wait after a 429 that says nothing of when to come back, in ms [1000]. */
  defaultBackoffMs?: number;
  /** How long a spent daily budget refuses calls before one is let through to look again, in ms [60 000]. */
  budgetRecheckMs?: number;
  /**
   * The longest wait for a turn, in ms, by priority [interactive 5 000, bulk 30 000]. A call whose turn is further
   * away (a small limit spent, a long `Retry-After`) is answered 429 with `Retry-After` at once, as the provider would
   * have, instead of holding its caller; a bulk call waits longer (its operation's deadline bounds it too).
   */
  maxWaitMs?: { interactive: number; bulk: number };
  /** The clock, epoch ms [Date.now]. */
  now?: () => number;
}

interface Waiter {
  priority: PacingTag['priority'];
  grant: () => void;
  fail: (error: unknown) => void;
}

/** What one account's pacing knows. */
interface Pace {
  /** Learned from the headers; undefined until an answer carried them (then calls are not paced by rate). */
  limit?: number;
  windowMs?: number;
  tokens: number;
  refilledAt: number;
  /** Multiplier of the rate after 429s (×0.7 each, back up by 0.02 per success), 0.25–1. */
  factor: number;
  blockedUntil: number;
  budgetSpentUntil: number;
  /** Calls sent so far (a sequence number), and answers received: for readings that arrive out of order. */
  sent: number;
  /** True while the first call of an account that has not told its limits is out (one probe at a time). */
  probing: boolean;
  learned: boolean;
  interactive: Waiter[];
  bulk: Waiter[];
  timer?: NodeJS.Timeout;
  lastUsed: number;
}

/** The most accounts whose pacing a process keeps; the least recently used is forgotten beyond it. */
const MAX_ACCOUNTS = 10_000;

/**
 * The token buckets of every account, in this process (docs/contract.md "Pacing"):
 * - Until an answer tells the account's limit, bulk calls go one at a time (a probe) and interactive calls go at
 *   once; an answer without rate-limit headers leaves the account unpaced (only a 429 slows it).
 * - Once `limit` per `windowMs` is known, the bucket refills at `share × limit / windowMs` (less for small limits, see
 *   `rate`) and holds at most `burstShare × limit` (at least 1), so no window sees more than the limit. Each answer's `remaining` lowers the
 *   bucket to what the provider says is left (counting the calls sent after the answered one), which accounts for other
 *   clients of the same credentials and other unicrm nodes.
 * - A 429 stops the account until its `Retry-After` (else the reset, else `defaultBackoffMs`) and slows its rate by
 *   0.7; successes bring it back. A spent daily budget refuses calls at once (429) for `budgetRecheckMs`.
 * - Waiting calls are granted interactive first, then bulk, each first come first served.
 */
export class Pacer {
  private readonly paces = new Map<string, Pace>();
  private readonly tags = new WeakMap<AbortSignal, PacingTag>();
  private readonly share: number;
  private readonly burstShare: number;
  private readonly defaultBackoffMs: number;
  private readonly budgetRecheckMs: number;
  private readonly maxWaitMs: { interactive: number; bulk: number };
  private readonly now: () => number;

  constructor(options: PacerOptions = {}) {
    this.share = options.share ?? 0.95;
    this.burstShare = options.burstShare ?? 0.05;
    this.defaultBackoffMs = options.defaultBackoffMs ?? 1000;
    this.budgetRecheckMs = options.budgetRecheckMs ?? 60_000;
    this.maxWaitMs = options.maxWaitMs ?? { interactive: 5_000, bulk: 30_000 };
    this.now = options.now ?? (() => Date.now());
  }

  /**
   * Marks the calls made with `signal` (an operation's deadline signal, which core hands to the connector and the
   * connector to the transport) as made for `tag`. Calls with an untagged signal are not paced.
   */
  tag(signal: AbortSignal, tag: PacingTag): void {
    this.tags.set(signal, tag);
  }

  /** The tag of a call's signal, if any. */
  tagOf(signal: AbortSignal | undefined): PacingTag | undefined {
    return signal && this.tags.get(signal);
  }

  /**
   * Waits for the account's next turn.
   * @returns the call's sequence number, for {@link observe}
   * @throws UnicrmError 429 (not remote) when the account's daily budget is spent; the signal's reason when it aborts
   */
  async acquire(tag: PacingTag, signal?: AbortSignal): Promise<number> {
    const pace = this.pace(tag.key);
    const now = this.now();
    if (pace.budgetSpentUntil > now) {
      throw new UnicrmError(429, 'The provider reports the account\'s daily API budget spent; unicrm sends nothing more for it until the provider resets it.', {}, { 'retry-after': String(Math.ceil((pace.budgetSpentUntil - now) / 1000)) });
    }
    if (pace.interactive.length === 0 && pace.bulk.length === 0 && this.take(pace, now, tag.priority)) return ++pace.sent;
    if (signal?.aborted) throw signal.reason;
    const wait = this.expectedWait(pace, tag.priority, now);
    if (wait > this.maxWaitMs[tag.priority]) {
      const seconds = Math.max(1, Math.ceil(wait / 1000));
      throw new UnicrmError(
        429,
        `The provider's rate limit leaves this integrated account no turn for about ${seconds} s: retry after Retry-After seconds.`,
        { truto_error_insight: { rate_limit_error: { description: "unicrm paces each account's calls to the provider's rate limit (docs/contract.md \"Pacing\")." } } },
        { 'retry-after': String(seconds) },
      );
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const queue = tag.priority === 'interactive' ? pace.interactive : pace.bulk;
        const at = queue.indexOf(waiter);
        if (at >= 0) queue.splice(at, 1);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        priority: tag.priority,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        fail: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      (tag.priority === 'interactive' ? pace.interactive : pace.bulk).push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pump(tag.key, pace);
    });
    return ++pace.sent;
  }

  /**
   * Learns from one answer (or its absence: a call that failed before an answer).
   * @param sequence what {@link acquire} returned for the call
   */
  observe(tag: PacingTag, sequence: number, response: Pick<HttpResponse, 'status' | 'headers'> | undefined): void {
    const pace = this.pace(tag.key);
    const now = this.now();
    pace.probing = false;
    if (response) {
      const reading = readRateLimitHeaders(response.headers, now);
      if (reading.limit !== undefined && reading.limit > 0) {
        pace.learned = true;
        if (pace.limit === undefined) {
          // The probe was this window's first call: the bucket starts empty and fills from here.
          pace.tokens = 0;
          pace.refilledAt = now;
        }
        pace.limit = reading.limit;
        // A window not stated is learned from the longest reset seen (a rolling window's reset is at most its length).
        const window = reading.windowMs ?? (reading.resetMs !== undefined ? Math.max(1000, Math.ceil(reading.resetMs / 1000) * 1000) : undefined);
        if (window !== undefined) pace.windowMs = reading.windowMs ?? Math.max(pace.windowMs ?? 0, window);
        pace.windowMs ??= 1000;
      } else if (!pace.learned) {
        pace.learned = true; // the provider tells no limit: calls go unpaced until a 429
      }
      if (reading.remaining !== undefined && pace.limit !== undefined) {
        this.refill(pace, now);
        const left = reading.remaining - (pace.sent - sequence);
        if (left < pace.tokens) pace.tokens = Math.max(left, 0);
        if (left <= 0 && reading.resetMs !== undefined) pace.blockedUntil = Math.max(pace.blockedUntil, now + reading.resetMs);
      }
      if (reading.budgetSpent) pace.budgetSpentUntil = now + this.budgetRecheckMs;
      if (response.status === 429) {
        pace.factor = Math.max(0.25, pace.factor * 0.7);
        const wait = reading.retryAfterMs ?? reading.resetMs ?? (pace.limit && pace.windowMs ? pace.windowMs / pace.limit : this.defaultBackoffMs);
        pace.blockedUntil = Math.max(pace.blockedUntil, now + Math.max(wait, 50));
        pace.tokens = 0;
        pace.refilledAt = Math.max(now, pace.blockedUntil);
      } else if (response.status < 400) {
        pace.factor = Math.min(1, pace.factor + 0.02);
      }
    }
    this.pump(tag.key, pace);
  }

  /** Whether a call of `tag` would wait longer than it may for its next turn (after a 429: send it again, or answer it). */
  waitsTooLong(tag: PacingTag): boolean {
    const pace = this.paces.get(tag.key);
    return pace !== undefined && this.expectedWait(pace, tag.priority, this.now()) > this.maxWaitMs[tag.priority];
  }

  /** About how long a call of `priority` joining the queue now waits for its turn, in ms (the calls ahead of it counted). */
  private expectedWait(pace: Pace, priority: PacingTag['priority'], now: number): number {
    const blocked = Math.max(0, pace.blockedUntil - now);
    const rate = this.rate(pace);
    if (!pace.learned || pace.limit === undefined || rate <= 0) return blocked;
    const ahead = pace.interactive.length + (priority === 'bulk' ? pace.bulk.length : 0);
    const from = Math.max(now, pace.blockedUntil);
    const tokens = from > pace.refilledAt ? Math.min(this.capacity(pace), pace.tokens + (from - pace.refilledAt) * rate) : pace.tokens;
    return blocked + Math.max(0, (ahead + 1 - tokens) / rate);
  }

  /** What the pacer knows of an account (tests, diagnostics): learned limit and window, calls waiting. */
  state(key: string): { limit?: number; windowMs?: number; waiting: number; factor: number } | undefined {
    const pace = this.paces.get(key);
    return pace && { limit: pace.limit, windowMs: pace.windowMs, waiting: pace.interactive.length + pace.bulk.length, factor: pace.factor };
  }

  private pace(key: string): Pace {
    let pace = this.paces.get(key);
    const now = this.now();
    if (!pace) {
      pace = { tokens: 0, refilledAt: now, factor: 1, blockedUntil: 0, budgetSpentUntil: 0, sent: 0, probing: false, learned: false, interactive: [], bulk: [], lastUsed: now };
      this.paces.set(key, pace);
      if (this.paces.size > MAX_ACCOUNTS) this.forgetIdle();
    }
    pace.lastUsed = now;
    return pace;
  }

  private forgetIdle(): void {
    let oldest: [string, Pace] | undefined;
    for (const entry of this.paces) {
      const [, pace] = entry;
      // An account with calls waiting or out, or stopped by a 429, keeps what it knows.
      if (pace.interactive.length + pace.bulk.length > 0 || pace.probing || pace.blockedUntil > this.now()) continue;
      if (!oldest || pace.lastUsed < oldest[1].lastUsed) oldest = entry;
    }
    if (oldest) this.paces.delete(oldest[0]);
  }

  /**
   * Calls per ms. A window sees at most the bucket's size plus what the rate adds in it, so the rate leaves room for
   * the bucket: `min(share × limit, limit − size) / window`. (The first window holds the probe, and the bucket starts
   * empty after it: one call, not the bucket's size.)
   */
  private rate(pace: Pace): number {
    if (pace.limit === undefined || !pace.windowMs) return 0;
    const perWindow = Math.max(Math.min(this.share * pace.limit, pace.limit - this.capacity(pace)), pace.limit / 2);
    return (perWindow * pace.factor) / pace.windowMs;
  }

  private capacity(pace: Pace): number {
    return Math.max(1, Math.floor(this.burstShare * (pace.limit ?? 0)));
  }

  private refill(pace: Pace, now: number): void {
    if (now <= pace.refilledAt) return;
    pace.tokens = Math.min(this.capacity(pace), pace.tokens + (now - pace.refilledAt) * this.rate(pace));
    pace.refilledAt = now;
  }

  /**
   * Takes a turn if one is free now. Before the limit is known an interactive call always may go (a slow first answer
   * must not hold the account's other calls), and bulk calls go one at a time (a probe).
   */
  private take(pace: Pace, now: number, priority: PacingTag['priority']): boolean {
    if (pace.blockedUntil > now) return false;
    if (!pace.learned) {
      if (priority === 'interactive') return true;
      if (pace.probing) return false;
      pace.probing = true;
      return true;
    }
    if (pace.limit === undefined) return true;
    this.refill(pace, now);
    if (pace.tokens < 1) return false;
    pace.tokens -= 1;
    return true;
  }

  /** When the next turn may be free (epoch ms), or undefined when only an answer can free it (a probe out). */
  private nextTurn(pace: Pace, now: number): number | undefined {
    if (pace.blockedUntil > now) return pace.blockedUntil;
    if (!pace.learned) return undefined;
    const rate = this.rate(pace);
    if (pace.limit === undefined || rate <= 0) return now;
    return now + Math.ceil((1 - pace.tokens) / rate);
  }

  /** Grants waiting calls their turns, interactive first, and sets a timer for the next one. */
  private pump(key: string, pace: Pace): void {
    if (pace.timer) {
      clearTimeout(pace.timer);
      pace.timer = undefined;
    }
    const now = this.now();
    while (pace.interactive.length + pace.bulk.length > 0) {
      if (pace.budgetSpentUntil > now) {
        const error = new UnicrmError(429, 'The provider reports the account\'s daily API budget spent; unicrm sends nothing more for it until the provider resets it.');
        for (const waiter of [...pace.interactive.splice(0), ...pace.bulk.splice(0)]) waiter.fail(error);
        return;
      }
      const queue = pace.interactive.length > 0 ? pace.interactive : pace.bulk;
      if (!this.take(pace, now, queue === pace.interactive ? 'interactive' : 'bulk')) break;
      const waiter = queue.shift() as Waiter;
      waiter.grant();
    }
    if (pace.interactive.length + pace.bulk.length === 0) return;
    const at = this.nextTurn(pace, now);
    if (at === undefined) return;
    pace.timer = setTimeout(() => {
      pace.timer = undefined;
      this.pump(key, pace);
    }, Math.max(1, at - now));
    pace.timer.unref?.();
  }
}

/**
 * The transport every connector is handed (docs/contract.md "Pacing"): calls whose signal carries a
 * {@link PacingTag} wait for their account's turn in the {@link Pacer}, and their answers teach it. A 429 is sent
 * again once its wait is over (a refused request did nothing, so this is safe for every method), up to
 * `maxRetries` times, unless the wait is longer than the pacer lets a call of its priority wait; then the 429 is
 * answered as the provider sent it.
 */
export class PacedTransport implements HttpTransport {
  constructor(
    private readonly inner: HttpTransport,
    readonly pacer: Pacer,
    private readonly maxRetries = 3,
  ) {}

  async request(request: HttpRequest): Promise<HttpResponse> {
    const tag = this.pacer.tagOf(request.signal);
    if (!tag) return this.inner.request(request);
    for (let attempt = 0; ; attempt += 1) {
      const sequence = await this.pacer.acquire(tag, request.signal);
      let response: HttpResponse;
      try {
        response = await this.inner.request(request);
      } catch (error) {
        this.pacer.observe(tag, sequence, undefined);
        throw error;
      }
      this.pacer.observe(tag, sequence, response);
      if (response.status !== 429 || attempt >= this.maxRetries || request.signal?.aborted) return response;
      if (this.pacer.waitsTooLong(tag)) return response;
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
