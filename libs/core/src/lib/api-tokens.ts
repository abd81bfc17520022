import 'reflect-metadata';
import { type ApiTokenStore, type Clock, TOKENS, UnicrmError } from '@unicrm/model';
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { inject, injectable } from 'tsyringe';
import type { CoreEnvironment } from './config';

/** The one environment of the foundation; tokens and accounts carry it so more can follow. */
export const DEFAULT_ENVIRONMENT = 'default';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/**
 * API tokens (DESIGN.md §4): random 256-bit tokens kept only as SHA-256 hashes; the `UNICRM_API_TOKEN`
 * value is accepted too, compared in constant time.
 */
@injectable()
export class ApiTokenService {
  private readonly staticHash?: Buffer;

  constructor(
    @inject(TOKENS.ApiTokenStore) private readonly store: ApiTokenStore,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Config) config: CoreEnvironment,
  ) {
    if (config.apiToken) this.staticHash = sha256(config.apiToken);
  }

  /**
   * On a first start without `UNICRM_API_TOKEN` and without stored tokens, makes one.
   * @returns the new token (to be shown once), or undefined when none was made
   */
  bootstrap(): string | undefined {
    if (this.staticHash || this.store.count() > 0) return undefined;
    return this.issue('bootstrap');
  }

  /** Makes and stores a new token; returns it (the only time it is visible). */
  issue(name: string, environmentId = DEFAULT_ENVIRONMENT): string {
    const token = `ucrm_${randomBytes(32).toString('base64url')}`;
    this.store.add({ id: randomUUID(), name, environmentId, createdAt: this.clock.now().toISOString() }, sha256(token));
    return token;
  }

  /**
   * The environment of a bearer token.
   * @param authorization the `Authorization` header value
   * @throws UnicrmError 401 when the header is missing, not Bearer, or the token is unknown
   */
  authenticate(authorization: string | undefined): string {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!match) throw UnicrmError.unauthorized();
    const hash = sha256(match[1] as string);
    if (this.staticHash && timingSafeEqual(hash, this.staticHash)) return DEFAULT_ENVIRONMENT;
    const record = this.store.findByHash(hash);
    if (!record) throw UnicrmError.unauthorized();
    return record.environmentId;
  }
}
