import 'reflect-metadata';
import { type Clock, type IdempotencyLease, type IdempotencyStore, type Logger, type MetricsObserver, TOKENS, UnicrmError, type UnicrmConfig } from '@unicrm/model';
import { createHash, randomUUID } from 'node:crypto';
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
 *
 * Liveness (issue 12): the request holding an in-flight key holds it by a random claim token under a lease
 * (`UNICRM_IDEMPOTENCY_LEASE_MS`) that this guard renews every third of the lease while the request runs, however
 * long it runs. A key held by a request of this guard is never taken over; one held by another process only once
 * its lease has ended, i.e. that process stopped renewing (it died). Its write may have been sent before it died,
 * so such a key is treated as ambiguous from the end of the lease (settle, then `reconcile`), never written blindly.
 * Every write to a held record is conditional on the holder's token (the store's one conditional statement), so two
 * requests cannot both take a key over and a late holder cannot overwrite its successor's record.
 */
@injectable()
export class IdempotencyGuard {
  private lastPrune = 0;
  private readonly ttlMs: number;
  private readonly leaseMs: number;
  private readonly settleMs: number;
  /** Keys held by this guard's running requests: claim token -> scope. */
  private readonly held = new Map<string, string>();
  private renewTimer: NodeJS.Timeout | undefined;

  constructor(
    @inject(TOKENS.IdempotencyStore) private readonly store: IdempotencyStore,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Config) config: UnicrmConfig & CoreEnvironment,
    @inject(TOKENS.Metrics) private readonly metrics: MetricsObserver,
  ) {
    this.ttlMs = config.idempotencyTtlMs;
    this.leaseMs = config.idempotencyLeaseMs;
    // A write that timed out may still land at the provider for a while: look for it only once it had the time to,
    // counted from the failure (a write that arrived at most one call deadline before it).
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
   * @param reconcile looks for the write of an earlier attempt that may have happened, made at or after `since`
   * @param options `retrySafe`: the operation may simply run again after a failure that left its outcome unknown (an
   *   update, a delete): such a failure releases the key instead of marking it ambiguous, and a key abandoned in
   *   flight is taken over and run again without waiting for a late write or looking for one
   * @throws UnicrmError 422 (key reused with another request), 409 (first request still running, or an ambiguous
   *   or abandoned key still settling), a replayed error, or whatever `operation` or `reconcile` throws
   * @param options `final`: whether an answer of `operation` is final (default: every answer is); one that is not is
   *   answered but not kept, and the key is released, so a retry runs the operation again (a batch whose items did not
   *   all reach a final answer, whose items are guarded by keys of their own)
   */
  async run(
    scope: string[],
    key: string,
    request: unknown,
    operation: () => Promise<IdempotentAnswer>,
    reconcile?: (since: Date) => Promise<IdempotentAnswer | undefined>,
    options: { retrySafe?: boolean; final?: (answer: IdempotentAnswer) => boolean } = {},
  ): Promise<IdempotentAnswer> {
    const id = sha256([...scope, key].join('\n'));
    const retrySafe = options.retrySafe === true;
    const fingerprint = sha256(canonical(request));
    const now = this.clock.now();
    const nowText = now.toISOString();
    await this.prune(now);

    const token = randomUUID();
    const existing = await this.store.claim(id, fingerprint, nowText, new Date(now.getTime() + this.ttlMs).toISOString(), this.lease(token, now));
    if (!existing) return this.execute(id, token, operation, retrySafe, options.final);
    const alive = existing.state === 'in_flight' && (this.held.has(existing.claimToken) || existing.leaseExpiresAt > nowText);
    if (existing.expiresAt <= nowText && !alive) {
      // Past its TTL: forgotten. Conditional on the token read, so a request that took the key meanwhile keeps it.
      await this.store.release(id, existing.claimToken);
      return this.run(scope, key, request, operation, reconcile, options);
    }
    if (existing.fingerprint !== fingerprint) {
      throw new UnicrmError(422, 'This Idempotency-Key was used with a different request; use a new key for a new request.');
    }
    if (existing.state === 'done') return this.replay(existing.statusCode ?? 500, existing.body ?? 'null', existing.rawText, existing.headers);
    if (alive) throw this.inFlight();
    if (retrySafe) {
      // Running it again has the effect of running it once: no late write to wait for, nothing to look for.
      if (!(await this.store.takeOver(id, existing.claimToken, this.lease(token, now), nowText))) throw this.inFlight();
      return this.execute(id, token, operation, retrySafe, options.final);
    }
    // Ambiguous, or abandoned in flight (its process stopped renewing the lease, maybe after sending the write):
    // the write may have happened. Counted from the failure: for an abandoned key, the end of its lease.
    const failedAt = existing.state === 'ambiguous' ? existing.createdAt : existing.leaseExpiresAt;
    const settled = Date.parse(failedAt) + this.settleMs - now.getTime();
    if (settled > 0) throw this.unsettled(settled);
    if (!(await this.store.takeOver(id, existing.claimToken, this.lease(token, now), nowText))) throw this.inFlight();
    if (existing.state === 'in_flight') this.logger.warn({ lease_expired_at: failedAt }, 'idempotency key taken over from a request whose lease ended');
    // An earlier attempt may have done the write: look for it before writing again (for an abandoned key, from
    // when it was claimed; for an ambiguous one, from its failure: the connector reaches back further for skew).
    let found: IdempotentAnswer | undefined;
    this.hold(id, token);
    try {
      found = await reconcile?.(new Date(existing.createdAt));
    } catch (error) {
      // The lookup failed: still ambiguous, and still counted from the first failure.
      this.letGo(token);
      this.kept(await this.store.markAmbiguous(id, token, failedAt));
      throw error;
    }
    if (found) {
      this.letGo(token);
      this.kept(await this.store.complete(id, token, { statusCode: found.statusCode, body: JSON.stringify(found.body), rawText: found.rawText ?? null, headers: found.headers ?? {} }));
      return found;
    }
    return this.execute(id, token, operation, retrySafe, options.final);
  }

  /**
   * Extends the lease of every key this guard's running requests hold (by the lease length, from now). Runs on a
   * timer every third of the lease while any is held; callable directly (tests).
   * @returns how many leases were extended
   */
  async renewLeases(): Promise<number> {
    if (this.held.size === 0) return 0;
    const holds = Array.from(this.held, ([token, scope]) => ({ scope, token }));
    try {
      return await this.store.renew(holds, new Date(this.clock.now().getTime() + this.leaseMs).toISOString());
    } catch (error) {
      // A busy database: the next tick tries again (a lease outlives two missed renewals).
      this.logger.warn({ err: error, held: holds.length }, 'could not renew idempotency leases');
      return 0;
    }
  }

  private lease(token: string, now: Date): IdempotencyLease {
    return { token, expiresAt: new Date(now.getTime() + this.leaseMs).toISOString() };
  }

  private hold(scope: string, token: string): void {
    this.held.set(token, scope);
    if (this.renewTimer === undefined) {
      this.renewTimer = setInterval(() => void this.renewLeases(), Math.max(10, Math.floor(this.leaseMs / 3)));
      this.renewTimer.unref();
    }
  }

  private letGo(token: string): void {
    this.held.delete(token);
    if (this.held.size === 0 && this.renewTimer !== undefined) {
      clearInterval(this.renewTimer);
      this.renewTimer = undefined;
    }
  }

  /** Logs a write that found the key held by another request (it took the key over: this one's lease had ended). */
  private kept(written: boolean): void {
    if (!written) this.logger.warn({}, 'idempotency key was taken over while its request ran; this request\'s outcome was not recorded');
  }

  private unsettled(remainingMs: number): UnicrmError {
    this.metrics.idempotency('conflict');
    const seconds = Math.max(1, Math.ceil(remainingMs / 1000));
    return new UnicrmError(
      409,
      `The first request with this Idempotency-Key may still be carried out by the provider; retry in ${seconds} s, then unicrm looks for its result before creating again.`,
      {},
      { 'retry-after': String(seconds) },
    );
  }

  private inFlight(): UnicrmError {
    this.metrics.idempotency('conflict');
    return new UnicrmError(409, 'A request with this Idempotency-Key is still being processed; retry after it finishes.', {}, { 'retry-after': '1' });
  }

  /** Runs the operation for a scope held by `token` and records how it ended. */
  private async execute(
    id: string,
    token: string,
    operation: () => Promise<IdempotentAnswer>,
    retrySafe: boolean,
    final?: (answer: IdempotentAnswer) => boolean,
  ): Promise<IdempotentAnswer> {
    this.hold(id, token);
    let answer: IdempotentAnswer;
    try {
      answer = await operation();
    } catch (error) {
      this.letGo(token);
      if (error instanceof UnicrmError && error.isRemote && error.statusCode >= 400 && error.statusCode < 500 && !RETRYABLE.has(error.statusCode)) {
        this.kept(await this.store.complete(id, token, { statusCode: error.statusCode, body: JSON.stringify(error.body), rawText: null, headers: { ...error.headers } }));
      } else if (error instanceof UnicrmError && error.requestMayHaveArrived && !retrySafe) {
        this.kept(await this.store.markAmbiguous(id, token, this.clock.now().toISOString()));
      } else {
        this.kept(await this.store.release(id, token));
      }
      throw error;
    }
    this.letGo(token);
    if (final && !final(answer)) {
      this.kept(await this.store.release(id, token));
      return answer;
    }
    this.kept(
      await this.store.complete(id, token, {
        statusCode: answer.statusCode,
        body: JSON.stringify(answer.body),
        rawText: answer.rawText ?? null,
        headers: answer.headers ?? {},
      }),
    );
    return answer;
  }

  private replay(statusCode: number, body: string, rawText: string | null, headers: Record<string, string>): IdempotentAnswer {
    this.metrics.idempotency('replayed');
    const replayHeaders = { ...headers, [REPLAYED_HEADER]: 'true' };
    if (statusCode >= 400) {
      const { statusCode: _s, error: _e, message, ...extras } = JSON.parse(body) as { statusCode: number; error: string; message: string };
      throw new UnicrmError(statusCode, message, extras, replayHeaders);
    }
    return { statusCode, body: JSON.parse(body) as unknown, ...(rawText !== null && { rawText }), headers: replayHeaders };
  }

  private async prune(now: Date): Promise<void> {
    if (now.getTime() - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = now.getTime();
    const removed = await this.store.prune(now.toISOString());
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
