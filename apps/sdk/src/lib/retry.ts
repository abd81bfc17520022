import { retryAfterMs, type UnicrmError } from '@unicrm/model';

/** How the remote client retries (issue "Reliability" item 3). Durations in milliseconds. */
export interface RetryPolicy {
  /** Retries after the first attempt (default 3; 0 = never). */
  maxRetries: number;
  /** First backoff step (default 500). */
  baseDelayMs: number;
  /** Cap of one backoff step (default 10 000). */
  maxDelayMs: number;
  /**
   * Total time a call may spend, attempts and waits included (default 60 000): no retry is planned whose wait ends
   * past it, and each attempt's timeout is the smaller of `timeoutMs` and what is left of it, so the call settles
   * within the budget (plus the timer's slack).
   */
  budgetMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 3, baseDelayMs: 500, maxDelayMs: 10_000, budgetMs: 60_000 };

/** Statuses worth another try: rate limited, the key's first request still running, a gateway failing or timing out. */
const RETRYABLE = new Set([409, 429, 502, 503, 504]);

// Retry-After is read as the core's pacing reads it: one parser, in @unicrm/model.
export { parseHttpDate, retryAfterMs } from '@unicrm/model';

/**
 * Whether and after how long to try a failed call again. Only calls that are safe to repeat are retried: reads,
 * and creates that carry an Idempotency-Key (the server then runs them once). 409 is retried only with a key (it is
 * the key's first request still running). The wait honours `Retry-After`, else capped exponential backoff with full
 * jitter (`random` in [0, 1)); no retry is planned past the attempt limit or the time budget.
 * @param attempt the number of the attempt that failed (1 = the first)
 * @param elapsedMs time spent on the call so far
 * @returns the wait in ms, or undefined for no retry
 */
export function retryDelay(
  error: Pick<UnicrmError, 'statusCode' | 'headers'>,
  attempt: number,
  elapsedMs: number,
  repeatable: { safe: boolean; idempotencyKey: boolean },
  policy: RetryPolicy = DEFAULT_RETRY,
  random: () => number = Math.random,
): number | undefined {
  if (attempt > policy.maxRetries) return undefined;
  if (!repeatable.safe && !repeatable.idempotencyKey) return undefined;
  if (!RETRYABLE.has(error.statusCode)) return undefined;
  if (error.statusCode === 409 && !repeatable.idempotencyKey) return undefined;
  const backoff = Math.floor(random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1)));
  const wait = retryAfterMs(error.headers['retry-after']) ?? backoff;
  // A retry must have some of the budget left to run in.
  return elapsedMs + wait >= policy.budgetMs ? undefined : wait;
}
