import 'reflect-metadata';
import {
  type AccountLocks,
  type Clock,
  type Connector,
  type HttpTransport,
  isJsonObject,
  type Logger,
  type StoredAccount,
  TOKENS,
  UnicrmError,
} from '@unicrm/model';
import { inject, injectable } from 'tsyringe';
import { IntegratedAccountService } from './accounts';

/** How long before its expiry an access token is refreshed, in ms: a call never starts with a token about to lapse. */
export const OAUTH_REFRESH_MARGIN_MS = 60_000;

/** How many refreshed accounts {@link OAuthRefresher} remembers (the newest context of each); past it the oldest goes. */
export const OAUTH_REMEMBERED_ACCOUNTS = 10_000;

const accountKey = (account: StoredAccount) => `${account.environmentId.length}:${account.environmentId}:${account.id}`;

/** Parses a token endpoint's body for an error message: RFC 6749 §5.2 `error` / `error_description`, else the text. */
function tokenError(status: number, text: string): { message: string; raw: unknown } {
  let raw: unknown = text;
  try {
    raw = JSON.parse(text);
  } catch {
    // not JSON: kept as text
  }
  if (isJsonObject(raw)) {
    const code = typeof raw.error === 'string' ? raw.error : undefined;
    const description = typeof raw.error_description === 'string' ? raw.error_description : typeof raw.message === 'string' ? raw.message : undefined;
    if (code || description) return { message: [code, description].filter(Boolean).join(': '), raw };
  }
  return { message: `HTTP ${status}`, raw };
}

/**
 * OAuth token refresh for every connector that declares {@link Connector.oauth} (docs/reliability.md "OAuth refresh"):
 * - **before expiry**: {@link fresh} refreshes a token that expires within {@link OAUTH_REFRESH_MARGIN_MS};
 * - **after a 401**: {@link afterUnauthorized} refreshes once, unless another call already replaced the rejected token;
 * - **single flight**: one refresh per account in flight in this process; every call that needs it waits on it (the
 *   refresh is not aborted by one caller's deadline: the transport's own call deadline bounds it);
 * - **sealed**: the new context is written through the account store (encrypted like every secret) and remembered, so
 *   calls that loaded the account before the write use the new tokens rather than refreshing again;
 * - **refused** (the token endpoint's 400 or 401, e.g. `invalid_grant`): the account is marked `needs_reauth` and the
 *   call fails with 401; other failures (5xx, 429, unreachable) are a 502/504 and change nothing.
 * - **across nodes** (PostgreSQL): the refresh runs under the account's lock in the store (`AccountLocks`), and reads
 *   the account again under it: when another node refreshed meanwhile, its tokens are used and nothing is sent.
 *   On SQLite (one host) the process's single flight is the lock.
 */
@injectable()
export class OAuthRefresher {
  private readonly flights = new Map<string, Promise<StoredAccount>>();
  /** The newest account of each account refreshed here (oldest first). */
  private readonly newest = new Map<string, StoredAccount>();

  constructor(
    private readonly accounts: IntegratedAccountService,
    @inject(TOKENS.HttpTransport) private readonly transport: HttpTransport,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.AccountLocks) private readonly locks: AccountLocks,
  ) {}

  /** The account as refreshed here, when that is newer than `account` (a copy loaded before the refresh was stored). */
  private latest(account: StoredAccount): StoredAccount {
    const known = this.newest.get(accountKey(account));
    return known && known.updatedAt > account.updatedAt ? known : account;
  }

  /**
   * The account with an access token that does not expire within {@link OAUTH_REFRESH_MARGIN_MS}: as given, the newer
   * copy refreshed here, or refreshed now. Accounts whose context uses no OAuth are returned as given.
   * @throws UnicrmError 401 (refresh refused: the account is now `needs_reauth`), 502/504 (token endpoint unusable)
   */
  async fresh(account: StoredAccount, connector: Connector, requestId?: string): Promise<StoredAccount> {
    const oauth = connector.oauth;
    if (!oauth) return account;
    const current = this.latest(account);
    const tokens = oauth.tokens(current.context);
    if (!tokens || tokens.expiresAt === undefined) return current;
    if (tokens.expiresAt.getTime() - this.clock.now().getTime() > OAUTH_REFRESH_MARGIN_MS) return current;
    return this.refresh(current, connector, tokens.accessToken, requestId);
  }

  /**
   * After the provider answered 401 to `rejectedAccessToken`: the account with another token (refreshed now, or by a
   * concurrent call), or undefined when the account uses no OAuth (the 401 then stands).
   * @throws UnicrmError as {@link fresh}
   */
  async afterUnauthorized(account: StoredAccount, connector: Connector, requestId?: string): Promise<StoredAccount | undefined> {
    const oauth = connector.oauth;
    const rejected = oauth?.tokens(account.context);
    if (!oauth || !rejected) return undefined;
    return this.refresh(account, connector, rejected.accessToken, requestId);
  }

  /** The access token of an account's context, when it uses OAuth. */
  accessToken(account: StoredAccount, connector: Connector): string | undefined {
    return connector.oauth?.tokens(account.context)?.accessToken;
  }

  private refresh(account: StoredAccount, connector: Connector, staleAccessToken: string, requestId?: string): Promise<StoredAccount> {
    const current = this.latest(account);
    const oauth = connector.oauth;
    if (oauth && oauth.tokens(current.context)?.accessToken !== staleAccessToken) return Promise.resolve(current);
    const key = accountKey(current);
    let flight = this.flights.get(key);
    if (!flight) {
      flight = this.locks
        .withLock(`oauth-refresh:${key}`, () => this.underLock(current, connector, staleAccessToken, requestId))
        .finally(() => this.flights.delete(key));
      this.flights.set(key, flight);
    }
    return flight;
  }

  /** Under the account's lock: the tokens another node stored meanwhile, or a refresh now. */
  private async underLock(account: StoredAccount, connector: Connector, staleAccessToken: string, requestId?: string): Promise<StoredAccount> {
    const oauth = connector.oauth as NonNullable<Connector['oauth']>;
    const stored = await this.accounts.stored(account.environmentId, account.id);
    if (stored?.status === 'needs_reauth') {
      // Another node's refresh was refused meanwhile: do not send the refused refresh token again.
      throw new UnicrmError(401, `Integrated account ${account.id} needs re-authentication: ${stored.lastError ?? 'its provider refused its credentials'} (PATCH /integrated-account/${account.id} with new tokens).`);
    }
    if (stored && !stored.fault && stored.status === 'active' && oauth.tokens(stored.context)?.accessToken !== staleAccessToken) {
      this.logger.debug({ req_id: requestId, integrated_account_id: account.id }, 'OAuth tokens already refreshed by another node');
      this.remember(stored);
      return Object.freeze(stored);
    }
    return this.run(stored && !stored.fault ? stored : account, connector, requestId);
  }

  private remember(account: StoredAccount): void {
    const key = accountKey(account);
    this.newest.delete(key);
    if (this.newest.size >= OAUTH_REMEMBERED_ACCOUNTS) this.newest.delete(this.newest.keys().next().value as string);
    this.newest.set(key, account);
  }

  private async run(account: StoredAccount, connector: Connector, requestId?: string): Promise<StoredAccount> {
    const oauth = connector.oauth as NonNullable<Connector['oauth']>;
    const request = oauth.refreshRequest(account.context);
    const log = { req_id: requestId, integrated_account_id: account.id, integration: account.integration };
    this.logger.info(log, 'refreshing the OAuth access token');
    const response = await this.transport.request({ method: 'POST', url: request.url, headers: request.headers, body: request.body });
    if (response.status === 400 || response.status === 401) {
      const { message, raw } = tokenError(response.status, response.bodyText);
      const reason = `${connector.displayName} refused to refresh the OAuth token (${response.status} ${message}): connect the account again`;
      await this.accounts.markNeedsReauth(account, reason);
      this.logger.warn({ ...log, status: response.status }, 'OAuth refresh refused: account marked needs_reauth');
      throw new UnicrmError(
        401,
        `Integrated account ${account.id} needs re-authentication: ${reason} (PATCH /integrated-account/${account.id} with new tokens).`,
        {
          truto_is_remote_error: true,
          raw_response: raw,
          truto_error_insight: { oauth_refresh_refused: { description: `${connector.displayName}'s token endpoint refused the refresh token.` } },
        },
      );
    }
    if (response.status < 200 || response.status > 299) {
      const { message, raw } = tokenError(response.status, response.bodyText);
      throw new UnicrmError(502, `${connector.displayName}'s token endpoint answered ${response.status} (${message}) to a token refresh; nothing changed, retry later.`, {
        truto_is_remote_error: true,
        raw_response: raw,
      });
    }
    let context: Record<string, unknown>;
    try {
      const answer: unknown = JSON.parse(response.bodyText);
      context = connector.parseContext(oauth.applyRefresh(account.context, answer, this.clock.now()));
    } catch (error) {
      throw new UnicrmError(502, `${connector.displayName}'s token endpoint answered ${response.status} with no usable tokens (${(error as Error).message}).`, {
        truto_is_remote_error: true,
      });
    }
    const saved = await this.accounts.saveRefreshedContext(account, context, requestId);
    this.remember(saved);
    this.logger.info(log, 'OAuth access token refreshed');
    return saved;
  }
}
