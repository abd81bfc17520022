import 'reflect-metadata';
import { type ApiTokenRecord, type ApiTokenStore, type Clock, type MetricsObserver, TOKENS, UnicrmError } from '@unicrm/model';
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { inject, injectable } from 'tsyringe';
import type { CoreEnvironment } from './config';

/** The environment of `UNICRM_API_TOKEN` and of the token made on a first start. */
export const DEFAULT_ENVIRONMENT = 'default';

const ENVIRONMENT_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const DAY_MS = 86_400_000;
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/** How many `Authorization` values {@link ApiTokenService.authenticate} remembers; past it the oldest is dropped. */
export const TOKEN_CACHE_SIZE = 1_000;
/**
 * Longest `Authorization` value remembered: `Bearer ` and a token unicrm issues make 55 characters; a longer
 * `UNICRM_API_TOKEN` is still accepted, checked the long way each time.
 */
const MAX_CACHED_HEADER = 256;
/** What the cache holds for the `UNICRM_API_TOKEN` value. */
const STATIC_TOKEN = Symbol('UNICRM_API_TOKEN');

/** The caller behind a valid token. */
export interface AuthenticatedCaller {
  environmentId: string;
  tokenId: string;
}

/** A token as listed: its record, never the token. */
export type ApiTokenInfo = ApiTokenRecord & { status: 'active' | 'expired' | 'revoked' };

/**
 * API tokens (DESIGN.md §4; truto-contract.md §4.1): random 256-bit tokens, each of one environment,
 * kept only as SHA-256 hashes (found by hash, so no comparison depends on the token's bytes), with an
 * optional expiry and revocation. The `UNICRM_API_TOKEN` value is accepted too (environment `default`),
 * compared in constant time.
 *
 * {@link authenticate} (every request) remembers, for up to {@link TOKEN_CACHE_SIZE} header values, which token
 * record (or the `UNICRM_API_TOKEN` value) a header stands for. A stored token's record is used only while the
 * token store's `changeStamp()` stays the same: an issue or revocation here or in another process sharing the
 * database (`unicrm tokens revoke`) makes the next request read the record again. Only headers of known tokens,
 * written `Bearer <token>`, are remembered; expiry and revocation are judged on each request from the record and
 * the clock.
 */
@injectable()
export class ApiTokenService {
  private readonly staticHash?: Buffer;
  /** Header value -> the record of its stored token, or {@link STATIC_TOKEN}; oldest first. */
  private readonly cache = new Map<string, ApiTokenRecord | typeof STATIC_TOKEN>();
  /** The token store's change stamp the cached records were read under. */
  private cacheStamp: number | undefined;

  constructor(
    @inject(TOKENS.ApiTokenStore) private readonly store: ApiTokenStore,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Config) config: CoreEnvironment,
    @inject(TOKENS.Metrics) private readonly metrics: MetricsObserver,
  ) {
    if (config.apiToken) this.staticHash = sha256(config.apiToken);
  }

  /**
   * On a first start without `UNICRM_API_TOKEN` and without stored tokens, makes one.
   * @returns the new token (to be shown once), or undefined when none was made
   */
  async bootstrap(): Promise<string | undefined> {
    if (this.staticHash || (await this.store.count()) > 0) return undefined;
    return (await this.issue({ name: 'bootstrap' })).token;
  }

  /**
   * Makes and stores a new token.
   * @param options `name`; `environment` (lower-case letters, digits, `_`, `-`; default `default`);
   *   `expiresInDays` (a positive number of days; default never)
   * @returns the token (the only time it is visible) and its record
   * @throws UnicrmError 400 for a bad name, environment or expiry
   */
  async issue(options: { name: string; environment?: string; expiresInDays?: number }): Promise<{ token: string; record: ApiTokenRecord }> {
    const environment = options.environment ?? DEFAULT_ENVIRONMENT;
    const name = options.name.trim();
    if (!name || name.length > 100) throw UnicrmError.validation([{ path: 'name', message: 'must be 1 to 100 characters' }]);
    if (!ENVIRONMENT_NAME.test(environment)) {
      throw UnicrmError.validation([{ path: 'environment', message: 'must be lower-case letters, digits, _ or - (up to 63)' }]);
    }
    const days = options.expiresInDays;
    if (days !== undefined && !(Number.isFinite(days) && days > 0)) {
      throw UnicrmError.validation([{ path: 'expires_in', message: 'must be a positive number of days' }]);
    }
    const now = this.clock.now();
    const record: ApiTokenRecord = {
      id: randomUUID(),
      name,
      environmentId: environment,
      createdAt: now.toISOString(),
      expiresAt: days === undefined ? null : new Date(now.getTime() + days * DAY_MS).toISOString(),
      revokedAt: null,
    };
    const token = `ucrm_${randomBytes(32).toString('base64url')}`;
    await this.store.add(record, sha256(token));
    return { token, record };
  }

  /** Every stored token with its status, oldest first (the `UNICRM_API_TOKEN` value is not stored, so not listed). */
  async list(): Promise<ApiTokenInfo[]> {
    const now = this.clock.now().toISOString();
    return (await this.store.list()).map((record) => ({ ...record, status: this.statusOf(record, now) }));
  }

  /**
   * Revokes a token: it is refused from the next request on.
   * @throws UnicrmError 404 when there is no such token or it was revoked already
   */
  async revoke(id: string): Promise<void> {
    if (!(await this.store.revoke(id, this.clock.now().toISOString()))) throw UnicrmError.notFound(`No active API token ${id}.`);
  }

  private statusOf(record: ApiTokenRecord, now: string): ApiTokenInfo['status'] {
    if (record.revokedAt) return 'revoked';
    if (record.expiresAt && record.expiresAt <= now) return 'expired';
    return 'active';
  }

  /**
   * Who a bearer token is: its environment and its id (`static` for `UNICRM_API_TOKEN`; the id keys rate limits).
   * A header seen before is answered from memory while the token store is unchanged (see the class); otherwise
   * the token is hashed, compared in constant time with `UNICRM_API_TOKEN`'s hash, then looked up by hash.
   * @param authorization the `Authorization` header value
   * @returns a new object on each call
   * @throws UnicrmError 401 when the header is missing, not Bearer, or the token is unknown, expired or revoked
   */
  async authenticate(authorization: string | undefined): Promise<AuthenticatedCaller> {
    if (authorization !== undefined) {
      const cached = this.cache.get(authorization);
      if (cached === STATIC_TOKEN) {
        this.metrics.cache('tokens', true);
        return { environmentId: DEFAULT_ENVIRONMENT, tokenId: 'static' };
      }
      if (cached !== undefined && this.store.changeStamp() === this.cacheStamp) {
        this.metrics.cache('tokens', true);
        return this.callerOf(cached);
      }
    }
    this.metrics.cache('tokens', false);
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match) throw UnicrmError.unauthorized();
    const token = match[1] as string;
    const hash = sha256(token);
    if (this.staticHash && timingSafeEqual(hash, this.staticHash)) {
      this.remember(authorization as string, token, STATIC_TOKEN);
      return { environmentId: DEFAULT_ENVIRONMENT, tokenId: 'static' };
    }
    // The stamp is read before the record: a change committed in between gives the next request a new stamp.
    const stamp = this.store.changeStamp();
    if (stamp !== this.cacheStamp) {
      this.cache.clear();
      this.cacheStamp = stamp;
    }
    const record = await this.store.findByHash(hash);
    if (!record) throw UnicrmError.unauthorized();
    this.remember(authorization as string, token, record);
    return this.callerOf(record);
  }

  /** The caller of a stored token's record, judged now. @throws UnicrmError 401 when it expired or was revoked */
  private callerOf(record: ApiTokenRecord): AuthenticatedCaller {
    const status = this.statusOf(record, this.clock.now().toISOString());
    if (status !== 'active') {
      throw UnicrmError.unauthorized(`The API token ${status === 'expired' ? `expired at ${record.expiresAt}` : 'was revoked'}; use another one.`);
    }
    return { environmentId: record.environmentId, tokenId: record.id };
  }

  /**
   * Remembers what a header stands for, if it is written `Bearer <token>` (any other spelling is checked the long
   * way each time, so one token cannot take many entries) and not longer than {@link MAX_CACHED_HEADER}.
   */
  private remember(authorization: string, token: string, value: ApiTokenRecord | typeof STATIC_TOKEN): void {
    if (authorization.length > MAX_CACHED_HEADER || authorization.length !== token.length + 7 || !authorization.startsWith('Bearer ')) return;
    if (this.cache.size >= TOKEN_CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(authorization, value);
  }
}
