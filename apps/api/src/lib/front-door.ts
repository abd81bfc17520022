import { isValidRequestId, type RateLimits } from '@unicrm/core';
import { type RateLimitCheck, type RateLimitCounterStore, type RateLimitHit, UnicrmError } from '@unicrm/model';
import { MemoryStore } from 'express-rate-limit';
import helmet from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';

/*
 * The parts of the HTTP front door that every request goes through, written against node:http so that both
 * the Express app and the create route's own handler (app.ts) use the same code: request id, security
 * headers, the one log line per request, rate limits and JSON answers. Performance matters here (issue 8,
 * docs/benchmarks.md): nothing in this file allocates more than a few objects per request.
 */

/** The security headers helmet sets, as one list computed once at start (DESIGN.md §4; docs/security.md). */
export const SECURITY_HEADERS: ReadonlyArray<readonly [string, string]> = captureHelmetHeaders();

function captureHelmetHeaders(): Array<[string, string]> {
  const headers: Array<[string, string]> = [];
  const recorder = {
    setHeader: (name: string, value: unknown) => headers.push([name, String(value)]),
    removeHeader: () => undefined,
  };
  const middleware = helmet({
    contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    crossOriginResourcePolicy: { policy: 'same-origin' },
  });
  let done = false;
  // helmet's headers do not depend on the request (no CSP nonces here), so one run gives them all.
  middleware({} as IncomingMessage, recorder as unknown as ServerResponse, () => {
    done = true;
  });
  if (!done || headers.length === 0) throw new Error('helmet did not set its headers synchronously');
  return headers;
}

/** What the log line of a request needs to know that only the handler knows. */
const errorMessages = new WeakMap<ServerResponse, string>();

/** Records the message of an error answer, for the request's log line (`error`). */
export function noteErrorMessage(res: ServerResponse, message: string): void {
  errorMessages.set(res, message);
}

/**
 * The logger of the per-request line: `logger` without pino's redaction. The line's fields are fixed (below) and none
 * is a redacted path (`LOG_REDACT_PATHS`: credentials, authorization, cookies); redacting it cost 3 % of the API's CPU
 * per create (issue 8). Every other line keeps the redaction. Make it once per logger, not per request.
 */
export function requestLogger(logger: Logger): Logger {
  return logger.child({}, { redact: { paths: [] } });
}

/**
 * Starts a request: its id (the caller's `x-request-id` when valid, else a new UUID; echoed), helmet's headers,
 * and one log line when the answer is sent (`request completed`, level info < 400 ≤ warn < 500 ≤ error) or the
 * connection closes first (`request aborted`, warn). The line holds `req_id`, `req` {id, method, path (no query
 * string: it can name accounts)}, `res` {statusCode}, `responseTime` (ms) and `error` (the answer's message) on
 * error answers; the same fields pino-http wrote before (docs/benchmarks.md).
 * @param logger from {@link requestLogger}
 * @returns the request id
 */
export function beginRequest(req: IncomingMessage, res: ServerResponse, logger: Logger, done?: (statusCode: number | undefined) => void): string {
  const incoming = req.headers['x-request-id'];
  const id = isValidRequestId(incoming) ? incoming : randomUUID();
  res.setHeader('x-request-id', id);
  for (const [name, value] of SECURITY_HEADERS) res.setHeader(name, value);
  const started = performance.now();
  let logged = false;
  const log = (aborted: boolean) => {
    if (logged) return;
    logged = true;
    const statusCode = res.statusCode;
    const url = req.url ?? '';
    const at = url.indexOf('?');
    const line: Record<string, unknown> = {
      req_id: id,
      req: { id, method: req.method, path: at < 0 ? url : url.slice(0, at) },
      // An answer never sent has no status (Node's default 200 would be a lie).
      res: { statusCode: aborted && !res.headersSent ? undefined : statusCode },
      responseTime: Math.round((performance.now() - started) * 1000) / 1000,
    };
    const error = errorMessages.get(res);
    if (error !== undefined) line.error = error;
    done?.(aborted && !res.headersSent ? undefined : statusCode);
    if (aborted) logger.warn(line, 'request aborted');
    else if (statusCode >= 500) logger.error(line, 'request completed');
    else if (statusCode >= 400) logger.warn(line, 'request completed');
    else logger.info(line, 'request completed');
  };
  // 'finish' comes before 'close' when the answer went out. An answer written after the connection died (an error
  // answer to a body the client stopped sending) finishes without 'finish': 'close' logs it as aborted.
  res.once('finish', () => log(false));
  res.once('close', () => log(true));
  return id;
}

/** The id {@link beginRequest} gave the request, from its answer's `x-request-id` header. */
export function requestIdOf(res: ServerResponse): string | undefined {
  const id = res.getHeader('x-request-id');
  return typeof id === 'string' ? id : undefined;
}

/**
 * Where the limiters count when the nodes share counters (PostgreSQL): the store, and what to do when it fails (log
 * it; the limiters then count in memory: fail open).
 */
export interface SharedCounters {
  store: RateLimitCounterStore;
  onFailure: (error: unknown) => void;
}

/**
 * A fixed-window request counter per key, with the IETF draft-6 headers express-rate-limit sets
 * (`RateLimit-Policy`, `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`, in seconds) and `Retry-After` on
 * a 429 (truto-contract.md §3.4). Counts in memory, per process (express-rate-limit's `MemoryStore`); when the nodes
 * share counters, {@link countRequest} counts in the shared store instead (keys prefixed with {@link prefix}) and
 * falls back to these memory counters while that store cannot be reached (fail open; docs/deployment.md).
 */
export class RateLimiter {
  private readonly store = new MemoryStore();
  private readonly policy: string;

  /**
   * @param limit requests per window per key (> 0)
   * @param windowMs the window, in ms
   * @param what what a key is, for the 429 message ("API token", "integrated account")
   */
  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly what: string,
    /** Prefix of this limiter's keys in shared counters (`token:`, `account:`). */
    readonly prefix = '',
    private readonly onReject?: () => void,
  ) {
    this.store.init({ windowMs } as Parameters<MemoryStore['init']>[0]);
    this.policy = `${limit};w=${Math.ceil(windowMs / 1000)}`;
  }

  /**
   * Counts one request of `key`.
   * @returns the count; `exceeded` when the key went over its limit in this window (see {@link countRequest} for
   *   the 429, which weighs every limit first)
   */
  async hit(key: string): Promise<RateLimitCount> {
    const { totalHits, resetTime } = await this.store.increment(key);
    return this.count(totalHits, resetTime);
  }

  /** The count of `key` without counting a request (a request already refused by another limit). */
  async peek(key: string): Promise<RateLimitCount> {
    const info = await this.store.get(key);
    return this.count(info?.totalHits ?? 0, info?.resetTime);
  }

  /** The 429 of a full window: `Retry-After` its reset, the message naming this limit. */
  tooMany(count: RateLimitCount): UnicrmError {
    this.onReject?.();
    return new UnicrmError(
      429,
      `Rate limit exceeded: ${this.limit} requests per ${this.windowMs / 1000} s per ${this.what}. Retry after ${count.resetSeconds} s.`,
      { truto_error_insight: { rate_limit_error: { description: `unicrm's own limit per ${this.what}` } } },
      { 'Retry-After': String(count.resetSeconds) },
    );
  }

  /** What a shared counter store counts `key` as: this limiter's prefixed key, window and limit. */
  check(key: string): RateLimitCheck {
    return { key: this.prefix + key, windowMs: this.windowMs, limit: this.limit };
  }

  /** The count a shared counter store answered for {@link check}. */
  countOf(hit: RateLimitHit): RateLimitCount {
    return this.count(hit.hits, hit.resetAt);
  }

  /** Stops the store's expiry timer. */
  close(): void {
    this.store.shutdown();
  }

  private count(totalHits: number, resetTime: Date | undefined): RateLimitCount {
    const resetSeconds = resetTime ? Math.max(0, Math.ceil((resetTime.getTime() - Date.now()) / 1000)) : Math.ceil(this.windowMs / 1000);
    return new RateLimitCount(this, this.policy, this.limit, Math.max(0, this.limit - totalHits), resetSeconds, totalHits);
  }
}

/** One counted request: the values of the draft-6 headers (seconds for the reset). */
export class RateLimitCount {
  constructor(
    readonly limiter: RateLimiter,
    readonly policy: string,
    readonly limit: number,
    readonly remaining: number,
    readonly resetSeconds: number,
    /** Requests counted in this window, this one included. */
    readonly hits: number,
  ) {}

  /** Over the limit: this request is refused. */
  get exceeded(): boolean {
    return this.hits > this.limit;
  }

  /** No request left in this window: the next one is refused until the window resets. */
  get full(): boolean {
    return this.hits >= this.limit;
  }

  /** Sets `RateLimit-Policy`, `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (unless the answer started). */
  setHeaders(res: ServerResponse): void {
    if (res.headersSent) return;
    res.setHeader('RateLimit-Policy', this.policy);
    res.setHeader('RateLimit-Limit', String(this.limit));
    res.setHeader('RateLimit-Remaining', String(this.remaining));
    res.setHeader('RateLimit-Reset', String(this.resetSeconds));
  }
}

/** The names of the headers {@link RateLimitCount.setHeaders} sets. */
export const RATE_LIMIT_HEADERS = ['RateLimit-Policy', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'] as const;

/** unicrm's two limits (truto-contract.md §3.4); a limit of 0 is none. */
export interface RateLimitPair {
  /** Per API token, on every authenticated route. */
  perToken?: RateLimiter;
  /** Per integrated account (`environment:account id`), on unified routes. */
  perAccount?: RateLimiter;
  /** Counters every node shares (PostgreSQL); the limiters' memory counters while they cannot be reached. */
  shared?: SharedCounters;
}

/** How often, at most, a failing shared counter store is logged (ms). */
const SHARED_FAILURE_LOG_EVERY_MS = 60_000;

/**
 * The limiters of a configuration (`UNICRM_RATE_LIMIT_*`).
 * @param options `shared`: counters every node shares (the core's `rateLimitCounters` on PostgreSQL), and where to
 *   log that they cannot be reached (at most once a minute); `onReject`: told of each request a limit refuses
 */
export function createRateLimiters(
  limits: RateLimits,
  options: { shared?: { store: RateLimitCounterStore; logger: Logger }; onReject?: (limit: 'token' | 'account') => void } = {},
): RateLimitPair {
  const { shared, onReject } = options;
  let lastLogged = 0;
  const onFailure = (error: unknown) => {
    const now = Date.now();
    if (now - lastLogged < SHARED_FAILURE_LOG_EVERY_MS) return;
    lastLogged = now;
    shared?.logger.warn({ err: (error as Error).message }, 'shared rate-limit counters unreachable: this node counts its own requests until they are back');
  };
  return {
    perToken: limits.perToken > 0 ? new RateLimiter(limits.perToken, limits.windowMs, 'API token', 'token:', onReject && (() => onReject('token'))) : undefined,
    perAccount:
      limits.perAccount > 0 ? new RateLimiter(limits.perAccount, limits.windowMs, 'integrated account', 'account:', onReject && (() => onReject('account'))) : undefined,
    ...(shared && { shared: { store: shared.store, onFailure } }),
  };
}

/**
 * Sends a JSON answer: `Content-Type: application/json; charset=utf-8`, its length, the body text. Headers set
 * on `res` before (request id, security, rate limits) go out with it.
 * @param headers extra headers of this answer (e.g. `Retry-After`, `Idempotent-Replayed`)
 */
export function sendJsonText(res: ServerResponse, statusCode: number, text: string, headers?: Record<string, string>): void {
  if (headers) for (const name in headers) res.setHeader(name, headers[name] as string);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text, 'utf8'));
  res.statusCode = statusCode;
  res.end(text);
}

/** The query string exactly as the client sent it (without `?`), for `@unicrm/query`. */
export function rawQuery(url: string): string {
  const at = url.indexOf('?');
  return at < 0 ? '' : url.slice(at + 1);
}
