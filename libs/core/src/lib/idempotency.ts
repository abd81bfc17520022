import 'reflect-metadata';
import { type Clock, type IdempotencyStore, type Logger, TOKENS, UnicrmError, type UnicrmConfig } from '@unicrm/model';
import { createHash } from 'node:crypto';
import { inject, injectable } from 'tsyringe';
import type { CoreEnvironment } from './config';

/** The header that marks a replayed answer. */
export const REPLAYED_HEADER = 'idempotent-replayed';
const KEY = /^[\x20-\x7e]{1,255}$/;
const PRUNE_EVERY_MS = 60_000;
/** Remote errors that mean "not done, try again": never stored, so a retry runs again. */
const RETRYABLE = new Set([408, 409, 425, 429]);

/** An answer a guarded operation produced. */
export interface IdempotentAnswer {
  statusCode: number;
  body: unknown;
  rawText?: string;
  headers?: Record<string, string>;
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * `Idempotency-Key` for writes (draft-ietf-httpapi-idempotency-key-header; issue "Reliability"): the key is
 * scoped to environment + integrated account + method + path; the first answer (a success, or a remote
 * 4xx other than 408/409/425/429) is stored with a fingerprint of the validated query and body and replayed
 * for `UNICRM_IDEMPOTENCY_TTL_MS` (24 h) with `Idempotent-Replayed: true`; the same key with another
 * request answers 422, and while the first is running 409. A failure after which the write may have
 * happened (`requestMayHaveArrived`: a timeout or broken answer after sending) marks the key `ambiguous`:
 * until twice the remote timeout has passed since that failure (a slow write may still land) a retry
 * answers 409 with `Retry-After`; after that it first asks `reconcile` whether the write exists, and answers
 * it if so, instead of writing twice.
 * Any other failure releases the key, so the request can be retried.
 */
@injectable()
export class IdempotencyGuard {
  private lastPrune = 0;
  private readonly ttlMs: number;
  private readonly staleAfterMs: number;
  private readonly settleMs: number;

  constructor(
    @inject(TOKENS.IdempotencyStore) private readonly store: IdempotencyStore,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Config) config: UnicrmConfig & CoreEnvironment,
  ) {
    this.ttlMs = config.idempotencyTtlMs;
    // A first request that has not finished by then was lost with its process: its key may be taken over.
    this.staleAfterMs = 2 * config.remoteTimeoutMs + config.connectTimeoutMs + 5_000;
    // A write that timed out may still land at the provider for a while: look for it only once it had the time to,
    // counted from the failure (a timeout fires late: undici checks on a coarse clock).
    this.settleMs = 2 * config.remoteTimeoutMs;
  }

  /**
   * Checks an `Idempotency-Key` header value: an RFC 8941 string (quotes optional), 1–255 printable ASCII.
   * @returns the key without quotes
   * @throws UnicrmError 400
   */
  static parseKey(value: string): string {
    const key = value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
    if (!KEY.test(key)) {
      throw UnicrmError.validation([{ path: 'Idempotency-Key', message: 'must be 1 to 255 printable ASCII characters' }]);
    }
    return key;
  }

  /**
   * Runs `operation` at most once per key and request.
   * @param scope what the key is scoped to: `[environment, integrated account, method, path]`
   * @param request the validated request, fingerprinted (key order does not matter)
   * @param options `retrySafe`: the operation may simply run again after a failure that left its outcome unknown (an
   *   update, a delete), so such a failure releases the key instead of marking it ambiguous
   * @throws UnicrmError 422 (key reused with another request), 409 (first request still running), a replayed
   *   error, or whatever `operation` throws
   */
  async run(
    scope: string[],
    key: string,
    request: unknown,
    operation: () => Promise<IdempotentAnswer>,
    reconcile?: (since: Date) => Promise<IdempotentAnswer | undefined>,
    options: { retrySafe?: boolean } = {},
  ): Promise<IdempotentAnswer> {
    const id = sha256([...scope, key].join('\n'));
    const fingerprint = sha256(canonical(request));
    const now = this.clock.now();
    this.prune(now);

    const existing = this.store.claim(id, fingerprint, now.toISOString(), new Date(now.getTime() + this.ttlMs).toISOString());
    if (existing) {
      const expired = existing.expiresAt <= now.toISOString();
      const stale = existing.state === 'in_flight' && now.getTime() - Date.parse(existing.createdAt) > this.staleAfterMs;
      if (expired || stale) {
        this.store.release(id);
        return this.run(scope, key, request, operation, reconcile, options);
      }
      if (existing.fingerprint !== fingerprint) {
        throw new UnicrmError(422, 'This Idempotency-Key was used with a different request; use a new key for a new request.');
      }
      if (existing.state === 'done') return this.replay(existing.statusCode ?? 500, existing.body ?? 'null', existing.rawText, existing.headers);
      if (existing.state === 'in_flight') throw this.inFlight();
      const settled = Date.parse(existing.createdAt) + this.settleMs - now.getTime();
      if (settled > 0) throw this.unsettled(settled);
      if (!this.store.reclaim(id)) throw this.inFlight();
      // An earlier attempt may have done the write: look for it before writing again.
      let found: IdempotentAnswer | undefined;
      try {
        found = await reconcile?.(new Date(existing.createdAt));
      } catch (error) {
        // The lookup failed: still ambiguous, and still counted from the first failure.
        this.store.markAmbiguous(id, existing.createdAt);
        throw error;
      }
      if (found) {
        this.store.complete(id, { statusCode: found.statusCode, body: JSON.stringify(found.body), rawText: found.rawText ?? null, headers: found.headers ?? {} });
        return found;
      }
    }
    return this.execute(id, operation, options.retrySafe === true);
  }

  private unsettled(remainingMs: number): UnicrmError {
    const seconds = Math.max(1, Math.ceil(remainingMs / 1000));
    return new UnicrmError(
      409,
      `The first request with this Idempotency-Key may still be carried out by the provider; retry in ${seconds} s, then unicrm looks for its result before creating again.`,
      {},
      { 'retry-after': String(seconds) },
    );
  }

  private inFlight(): UnicrmError {
    return new UnicrmError(409, 'A request with this Idempotency-Key is still being processed; retry after it finishes.', {}, { 'retry-after': '1' });
  }

  /** Runs the operation for a claimed scope and records how it ended. */
  private async execute(id: string, operation: () => Promise<IdempotentAnswer>, retrySafe: boolean): Promise<IdempotentAnswer> {
    let answer: IdempotentAnswer;
    try {
      answer = await operation();
    } catch (error) {
      if (error instanceof UnicrmError && error.isRemote && error.statusCode >= 400 && error.statusCode < 500 && !RETRYABLE.has(error.statusCode)) {
        this.store.complete(id, { statusCode: error.statusCode, body: JSON.stringify(error.body), rawText: null, headers: { ...error.headers } });
      } else if (error instanceof UnicrmError && error.requestMayHaveArrived && !retrySafe) {
        this.store.markAmbiguous(id, this.clock.now().toISOString());
      } else {
        this.store.release(id);
      }
      throw error;
    }
    this.store.complete(id, {
      statusCode: answer.statusCode,
      body: JSON.stringify(answer.body),
      rawText: answer.rawText ?? null,
      headers: answer.headers ?? {},
    });
    return answer;
  }

  private replay(statusCode: number, body: string, rawText: string | null, headers: Record<string, string>): IdempotentAnswer {
    const replayHeaders = { ...headers, [REPLAYED_HEADER]: 'true' };
    if (statusCode >= 400) {
      const { statusCode: _s, error: _e, message, ...extras } = JSON.parse(body) as { statusCode: number; error: string; message: string };
      throw new UnicrmError(statusCode, message, extras, replayHeaders);
    }
    return { statusCode, body: JSON.parse(body) as unknown, ...(rawText !== null && { rawText }), headers: replayHeaders };
  }

  private prune(now: Date): void {
    if (now.getTime() - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = now.getTime();
    const removed = this.store.prune(now.toISOString());
    if (removed > 0) this.logger.debug({ removed }, 'pruned expired idempotency records');
  }
}

/**
 * A digest of a JSON value that does not depend on key order: SHA-256 (hex) of its canonical JSON. What an
 * Idempotency-Key's request and a list cursor's query are compared by.
 */
export function fingerprintOf(value: unknown): string {
  return sha256(canonical(value));
}
