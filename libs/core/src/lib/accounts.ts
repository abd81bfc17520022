import 'reflect-metadata';
import {
  type AccountStore,
  type Clock,
  type Connector,
  type IntegratedAccount,
  IntegratedAccountCreateBodySchema,
  type IntegratedAccountList,
  IntegratedAccountListQuerySchema,
  IntegratedAccountPatchBodySchema,
  exceedsJsonDepth,
  isJsonObject,
  type Logger,
  MAX_JSON_DEPTH,
  type StoredAccount,
  TOKENS,
  UnicrmError,
  zodFailures,
} from '@unicrm/model';
import { parseQueryString } from '@unicrm/query';
import { randomUUID } from 'node:crypto';
import { inject, injectable } from 'tsyringe';
import { ConnectorRegistry } from './registry';

/** How many accounts {@link IntegratedAccountService.load} keeps in memory; past it the oldest one read is dropped. */
export const ACCOUNT_CACHE_SIZE = 10_000;

/** Cache key of an account: unambiguous for any environment and id (the environment's length leads). */
const cacheKey = (environmentId: string, id: string) => `${environmentId.length}:${environmentId}:${id}`;

function requireObject(body: unknown): Record<string, unknown> {
  if (!isJsonObject(body)) throw UnicrmError.badRequest('The body must be a JSON object.');
  if (exceedsJsonDepth(body)) throw UnicrmError.badRequest(`The body nests objects or arrays deeper than ${MAX_JSON_DEPTH} levels.`);
  return body;
}

/**
 * The admin side of integrated accounts (DESIGN.md §4; truto-contract.md §4.2–4.3): create, list, get,
 * update, delete, in the Truto shape with secrets stripped. An account belongs to the environment of
 * the token that made it; other environments never see it (404, so ids do not leak).
 *
 * {@link load} (every unified call) keeps the accounts it read in memory, up to {@link ACCOUNT_CACHE_SIZE}, for as
 * long as the store's `changeStamp()` stays the same: any write through the store (create, update, delete, a
 * status change) or commit by another process on the same database (the CLI's `accounts update|remove`,
 * `keys rotate`) empties the cache before the next read, so an account changed or deleted anywhere is read again.
 */
@injectable()
export class IntegratedAccountService {
  /** Accounts read by {@link load} under {@link cacheStamp}, oldest first. Missing accounts are not kept. */
  private readonly cache = new Map<string, StoredAccount>();
  /** The store's change stamp the cached accounts were read under. */
  private cacheStamp: number | undefined;

  constructor(
    @inject(TOKENS.AccountStore) private readonly store: AccountStore,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    private readonly registry: ConnectorRegistry,
  ) {}

  /**
   * Connects an account: `{ integration, tenant_id, context, validate? }`. The context is checked by the
   * integration's connector and, unless `validate: false`, its credentials by one cheap provider call.
   * @returns the account, secrets stripped
   * @throws UnicrmError 400 naming each bad field or an unknown integration; 422 when the provider
   *   rejects the credentials (nothing is stored); 502/504 when it cannot be reached
   */
  async create(environmentId: string, body: unknown): Promise<IntegratedAccount> {
    const parsed = IntegratedAccountCreateBodySchema.safeParse(requireObject(body));
    if (!parsed.success) throw UnicrmError.validation(zodFailures(parsed.error));
    const connector = this.registry.get(parsed.data.integration);
    const context = connector.parseContext(parsed.data.context);
    if (parsed.data.validate) await this.verify(connector, context);
    const now = this.clock.now().toISOString();
    const account: StoredAccount = {
      id: randomUUID(),
      environmentId,
      tenantId: parsed.data.tenant_id,
      integration: connector.integration,
      status: 'active',
      context,
      publicContext: this.publicContext(connector, context),
      lastError: null,
      createdAt: now,
      updatedAt: now,
    };
    this.store.create(account);
    return this.present(account);
  }

  /**
   * Lists the environment's accounts, oldest first: `{ result, next_cursor, limit }`.
   * @param query raw query string or object: `tenant_id`, `status`, `integration`, `limit` (1–500, default 100), `next_cursor`
   * @throws UnicrmError 400 for a bad filter, limit or cursor
   */
  list(environmentId: string, query: string | Record<string, unknown>): IntegratedAccountList {
    const params = typeof query === 'string' ? parseQueryString(query) : query;
    const parsed = IntegratedAccountListQuerySchema.safeParse(params);
    if (!parsed.success) throw UnicrmError.validation(zodFailures(parsed.error));
    const { tenant_id, status, integration, limit, next_cursor } = parsed.data;
    let page;
    try {
      page = this.store.list(environmentId, { tenantId: tenant_id, status, integration, limit, cursor: next_cursor });
    } catch {
      throw UnicrmError.validation([{ path: 'next_cursor', message: 'is not a cursor this API gave out' }]);
    }
    return { result: page.accounts.map((account) => this.present(account)), next_cursor: page.nextCursor, limit };
  }

  /**
   * @param requestId the request's id, for log lines (`req_id`)
   * @throws UnicrmError 404 when the account does not exist in this environment
   */
  get(environmentId: string, id: string, requestId?: string): IntegratedAccount {
    const account = this.load(environmentId, id, requestId);
    // The loaded account is shared: the caller gets its own copy of the context it may change.
    return this.present({ ...account, publicContext: structuredClone(account.publicContext) });
  }

  /**
   * Updates `tenant_id` and/or merges `context` shallowly (truto-contract.md §4.2). The merged context is
   * checked again by the connector and, unless `validate: false`, its credentials by the provider; new
   * credentials move a `needs_reauth` account back to `active`.
   * @param requestId the request's id, for log lines (`req_id`)
   * @throws UnicrmError 400, 404, 422 (rejected credentials: nothing changes)
   */
  async update(environmentId: string, id: string, body: unknown, requestId?: string): Promise<IntegratedAccount> {
    const parsed = IntegratedAccountPatchBodySchema.safeParse(requireObject(body));
    if (!parsed.success) throw UnicrmError.validation(zodFailures(parsed.error));
    const account = this.load(environmentId, id, requestId);
    const connector = this.registry.get(account.integration);
    const next: StoredAccount = { ...account, updatedAt: this.clock.now().toISOString() };
    if (parsed.data.tenant_id !== undefined) next.tenantId = parsed.data.tenant_id;
    if (parsed.data.context !== undefined) {
      this.checkCredentialBinding(connector, account.context, parsed.data.context);
      next.context = connector.parseContext({ ...account.context, ...parsed.data.context });
      next.publicContext = this.publicContext(connector, next.context);
      if (parsed.data.validate) await this.verify(connector, next.context);
      if (account.status !== 'active') {
        next.status = 'active';
        next.lastError = null;
      }
    }
    const updated = this.store.update(next);
    this.forget(environmentId, account.id);
    if (!updated) throw this.notFound(id);
    return this.present(next);
  }

  /** @returns `{ id }` of the deleted account. @throws UnicrmError 404 */
  delete(environmentId: string, id: string): { id: string } {
    const deleted = this.store.delete(environmentId, id.toLowerCase());
    this.forget(environmentId, id.toLowerCase());
    if (!deleted) throw this.notFound(id);
    return { id };
  }

  /**
   * The stored account, secrets included, for a use case. Served from memory while the store's change stamp is
   * unchanged (see the class); otherwise, or the first time, read from the store (one read per call: a missing
   * account is not remembered). The returned object is shared by every caller until the account changes, and
   * frozen: copy it to change it (its `context` objects are shared too, and must not be modified).
   * @param requestId the id of the request being served, for the `req_id` of the line logged on a 500
   * @throws UnicrmError 404 when the account does not exist in this environment; 500 when its stored
   *   secrets cannot be decrypted (altered in the database, or another key), or the store cannot be read
   */
  load(environmentId: string, id: string, requestId?: string): StoredAccount {
    const lowerId = id.toLowerCase();
    const key = cacheKey(environmentId, lowerId);
    let account: StoredAccount | undefined;
    try {
      // The stamp is read before the account: a change committed in between gives the next call a new stamp.
      const stamp = this.store.changeStamp();
      if (stamp !== this.cacheStamp) {
        this.cache.clear();
        this.cacheStamp = stamp;
      } else {
        const cached = this.cache.get(key);
        if (cached) return cached;
      }
      account = this.store.get(environmentId, lowerId);
    } catch (error) {
      this.logger.error({ req_id: requestId, integrated_account_id: id, err: (error as Error).message }, 'stored credentials failed authentication');
      throw new UnicrmError(
        500,
        `The stored credentials of integrated account ${id} failed their integrity check (altered, or written with another key); ` +
          'they were not used. Delete the account and connect it again.',
      );
    }
    if (!account) throw this.notFound(id);
    Object.freeze(account);
    if (this.cache.size >= ACCOUNT_CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, account);
    return account;
  }

  /**
   * Records that the provider rejected the account's credentials (DESIGN.md §3), unless the account changed
   * since `account` was read (new credentials arrived while the rejected call was under way). The next
   * {@link load} reads the account again (and sees `needs_reauth`).
   */
  markNeedsReauth(account: StoredAccount, reason: string): void {
    this.store.setStatus(account.environmentId, account.id, 'needs_reauth', reason, this.clock.now().toISOString(), account.updatedAt);
    this.forget(account.environmentId, account.id);
  }

  /**
   * Drops an account from {@link load}'s memory after this service changed it. The store's change stamp moves
   * too, which empties the whole cache; this keeps the entry from outliving the change whatever the store does.
   */
  private forget(environmentId: string, id: string): void {
    this.cache.delete(cacheKey(environmentId, id));
  }

  /**
   * Refuses a change of where the secrets are sent (e.g. Pipeliner's `service_url`) unless the secrets come
   * along: otherwise anyone allowed to edit an account could send its stored credentials to a host of theirs.
   * @throws UnicrmError 400 naming the secrets to send
   */
  private checkCredentialBinding(connector: Connector, current: Record<string, unknown>, patch: Record<string, unknown>): void {
    const moved = (connector.credentialBoundContextKeys ?? []).filter((key) => key in patch && patch[key] !== current[key]);
    if (moved.length === 0) return;
    const missing = connector.secretContextKeys.filter((key) => !(key in patch));
    if (missing.length === 0) return;
    throw UnicrmError.validation(
      missing.map((key) => ({ path: `context.${key}`, message: `is required when ${moved.join(', ')} changes (the stored one is not sent to a new address)` })),
    );
  }

  /** Credentials the provider rejects (401/403) become a 422 that keeps the remote error's details. */
  private async verify(connector: Connector, context: Record<string, unknown>): Promise<void> {
    if (!connector.verifyCredentials) return;
    try {
      await connector.verifyCredentials(context);
    } catch (error) {
      if (error instanceof UnicrmError && error.isRemote && (error.statusCode === 401 || error.statusCode === 403)) {
        throw new UnicrmError(
          422,
          `${connector.integration} rejected the credentials (${error.statusCode}: ${error.message}). Nothing was stored.`,
          { truto_is_remote_error: true, raw_response: error.body.raw_response, truto_error_insight: error.body.truto_error_insight },
        );
      }
      throw error;
    }
  }

  private notFound(id: string): UnicrmError {
    return UnicrmError.notFound(`Integrated account ${id} not found.`);
  }

  private publicContext(connector: Connector, context: Record<string, unknown>): Record<string, unknown> {
    const secrets = new Set(connector.secretContextKeys);
    return Object.fromEntries(Object.entries(context).filter(([key]) => !secrets.has(key)));
  }

  /** The Truto-shaped account, secrets stripped. */
  present(account: StoredAccount): IntegratedAccount {
    const connector = this.registry.get(account.integration);
    return {
      id: account.id,
      tenant_id: account.tenantId,
      environment_id: account.environmentId,
      integration: { name: connector.integration, category: connector.category },
      status: account.status,
      context: account.publicContext,
      last_error: account.lastError,
      created_at: account.createdAt,
      updated_at: account.updatedAt,
    };
  }
}
