import 'reflect-metadata';
import {
  type AccountFault,
  type AccountStore,
  type Clock,
  type Connector,
  EncryptionKeyChangedError,
  type IntegratedAccount,
  IntegratedAccountCreateBodySchema,
  type IntegratedAccountList,
  IntegratedAccountListQuerySchema,
  IntegratedAccountPatchBodySchema,
  exceedsJsonDepth,
  InvalidCursorError,
  isJsonObject,
  type Logger,
  type MetricsObserver,
  MAX_JSON_DEPTH,
  type OutboxEvent,
  type WebhookEventType,
  type StoredAccount,
  TOKENS,
  type UnicrmConfig,
  UnicrmError,
  zodFailures,
} from '@unicrm/model';
import { parseQueryString } from '@unicrm/query';
import { randomUUID } from 'node:crypto';
import { inject, injectable } from 'tsyringe';
import type { CoreEnvironment } from './config';
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
 *
 * An account that cannot be used as stored (a `fault`: credentials that do not decrypt, a public context that is not
 * JSON, an integration no connector handles, a key changed under this process) is still listed, shown, updated where
 * that repairs it, and deleted; it shows `is_usable: false` and, in `last_error`, why and what the operator can do
 * ({@link faultMessage}). Calls that need it ({@link load}) answer 500 with that message: the caller did nothing
 * wrong, so never a 400, and nothing is sent to the provider (docs/reliability.md, "Unusable accounts").
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
    @inject(TOKENS.Config) private readonly config: UnicrmConfig & Partial<CoreEnvironment>,
    @inject(TOKENS.Metrics) private readonly metrics: MetricsObserver,
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
    try {
      await this.store.create(account, [this.event('integrated_account:created', account, now)]);
    } catch (error) {
      if (!(error instanceof EncryptionKeyChangedError)) throw error;
      this.logger.error({ integrated_account_id: account.id, fault: 'key_changed' }, 'integrated account not stored');
      throw new UnicrmError(500, `The integrated account was not stored. ${this.keyChangedAdvice()}`);
    }
    return this.present(account);
  }

  /**
   * Lists the environment's accounts, oldest first: `{ result, next_cursor, limit }`.
   * @param query raw query string or object: `tenant_id`, `status`, `integration`, `limit` (1–500, default 100), `next_cursor`
   * Accounts that cannot be used are listed too, with `is_usable: false` and why in `last_error`.
   * @throws UnicrmError 400 for a bad filter, limit or cursor (only a cursor the store did not make)
   */
  async list(environmentId: string, query: string | Record<string, unknown>): Promise<IntegratedAccountList> {
    const params = typeof query === 'string' ? parseQueryString(query) : query;
    const parsed = IntegratedAccountListQuerySchema.safeParse(params);
    if (!parsed.success) throw UnicrmError.validation(zodFailures(parsed.error));
    const { tenant_id, status, integration, limit, next_cursor } = parsed.data;
    let page;
    try {
      page = await this.store.list(environmentId, { tenantId: tenant_id, status, integration, limit, cursor: next_cursor });
    } catch (error) {
      if (error instanceof InvalidCursorError) throw UnicrmError.validation([{ path: 'next_cursor', message: error.message }]);
      throw error;
    }
    return { result: page.accounts.map((account) => this.present(account)), next_cursor: page.nextCursor, limit };
  }

  /**
   * The account, secrets stripped; one that cannot be used is shown too (`is_usable: false`, why in `last_error`).
   * @param requestId the request's id, for log lines (`req_id`)
   * @throws UnicrmError 404 when the account does not exist in this environment
   */
  async get(environmentId: string, id: string, requestId?: string): Promise<IntegratedAccount> {
    const account = await this.read(environmentId, id, requestId);
    // The loaded account is shared: the caller gets its own copy of the context it may change.
    return this.present({ ...account, publicContext: structuredClone(account.publicContext) });
  }

  /**
   * Updates `tenant_id` and/or merges `context` shallowly (truto-contract.md §4.2). The merged context is
   * checked again by the connector and, unless `validate: false`, its credentials by the provider; new
   * credentials move a `needs_reauth` account back to `active`.
   *
   * Repairs an account that cannot be used where the body gives what is missing: a public context that is not JSON
   * is written again from the credentials (any PATCH); credentials that do not decrypt are replaced when `context`
   * holds the whole context, secrets included (nothing of the unreadable one is kept).
   * @param requestId the request's id, for log lines (`req_id`)
   * @throws UnicrmError 400, 404, 422 (rejected credentials: nothing changes); 500 when the account cannot be used
   *   and the body does not repair it (the message says what would)
   */
  async update(environmentId: string, id: string, body: unknown, requestId?: string): Promise<IntegratedAccount> {
    const parsed = IntegratedAccountPatchBodySchema.safeParse(requireObject(body));
    if (!parsed.success) throw UnicrmError.validation(zodFailures(parsed.error));
    const account = await this.read(environmentId, id, requestId);
    const fault = this.faultOf(account);
    const connector = this.registry.byName(account.integration);
    const patch = parsed.data.context;
    const replacesCredentials =
      fault === 'credentials_unreadable' && connector !== undefined && patch !== undefined && connector.secretContextKeys.every((key) => key in patch);
    if (connector === undefined || (fault !== undefined && fault !== 'public_context_unreadable' && !replacesCredentials)) {
      throw this.unusable(account, fault ?? 'integration_unknown', requestId);
    }
    const next: StoredAccount = { ...account, updatedAt: this.clock.now().toISOString() };
    delete next.fault;
    if (parsed.data.tenant_id !== undefined) next.tenantId = parsed.data.tenant_id;
    if (patch !== undefined) {
      if (!replacesCredentials) this.checkCredentialBinding(connector, account.context, patch);
      next.context = connector.parseContext(replacesCredentials ? patch : { ...account.context, ...patch });
      if (parsed.data.validate) await this.verify(connector, next.context);
      if (account.status !== 'active') {
        next.status = 'active';
        next.lastError = null;
      }
    }
    next.publicContext = patch !== undefined || fault !== undefined ? this.publicContext(connector, next.context) : next.publicContext;
    const events = [this.event('integrated_account:updated', next, next.updatedAt)];
    if (account.status !== 'active' && next.status === 'active') events.push(this.event('integrated_account:reactivated', next, next.updatedAt));
    const updated = await this.write(() => this.store.update(next, events), account, requestId);
    this.forget(environmentId, account.id);
    if (!updated) throw this.notFound(id);
    return this.present(next);
  }

  /**
   * Deletes the account; `integrated_account:deleted` (the account as it was) is written in the same transaction.
   * @returns `{ id }` of the deleted account. @throws UnicrmError 404
   */
  async delete(environmentId: string, id: string): Promise<{ id: string }> {
    const existing = await this.store.get(environmentId, id.toLowerCase());
    const events = existing ? [this.event('integrated_account:deleted', existing, this.clock.now().toISOString())] : [];
    const deleted = await this.store.delete(environmentId, id.toLowerCase(), events);
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
   * @throws UnicrmError 404 when the account does not exist in this environment; 500 when it cannot be used as
   *   stored (see the class: the message says why and what the operator can do; nothing is sent to the provider)
   */
  async load(environmentId: string, id: string, requestId?: string): Promise<StoredAccount> {
    const account = await this.read(environmentId, id, requestId);
    const fault = this.faultOf(account);
    if (fault) throw this.unusable(account, fault, requestId);
    return account;
  }

  /** {@link load} without the fault check: the account as stored, usable or not. */
  private async read(environmentId: string, id: string, requestId?: string): Promise<StoredAccount> {
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
        this.metrics.cache('accounts', cached !== undefined);
        if (cached) return cached;
      }
      account = await this.store.get(environmentId, lowerId);
    } catch (error) {
      this.logger.error({ req_id: requestId, integrated_account_id: id, err: (error as Error).message }, 'the account store cannot be read');
      // The store's own answer when it has one (PostgreSQL unreachable: 503 with Retry-After).
      if (error instanceof UnicrmError) throw error;
      const where = this.config.databaseUrl ? 'the database' : `the database (${this.config.dataDir})`;
      throw new UnicrmError(500, `Integrated account ${id} cannot be read from ${where}; the error was logged.`);
    }
    if (!account) throw this.notFound(id);
    Object.freeze(account);
    if (this.cache.size >= ACCOUNT_CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, account);
    return account;
  }

  /** Why the account cannot be used (the store's fault, or an integration without a connector), or undefined. */
  private faultOf(account: StoredAccount): AccountFault | undefined {
    return account.fault ?? (this.registry.byName(account.integration) ? undefined : 'integration_unknown');
  }

  /** The 500 of a call that needs an account that cannot be used, logged (id and fault only, never a secret). */
  private unusable(account: StoredAccount, fault: AccountFault, requestId?: string): UnicrmError {
    this.logger.error({ req_id: requestId, integrated_account_id: account.id, fault }, 'integrated account cannot be used');
    return new UnicrmError(500, this.faultMessage(account, fault));
  }

  /** Runs a store write; a key changed under this process becomes the 500 that says to restart it. */
  private async write<T>(run: () => Promise<T>, account: StoredAccount, requestId?: string): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof EncryptionKeyChangedError) throw this.unusable(account, 'key_changed', requestId);
      throw error;
    }
  }

  /**
   * What is wrong with an account that cannot be used, and what the operator can do, in one message (the 500's, and
   * `last_error` in listings). Names the account, the data directory and where the key is; never a secret.
   */
  faultMessage(account: StoredAccount, fault: AccountFault): string {
    const id = account.id;
    const keyLocation = this.config.encryptionKey ? 'UNICRM_ENCRYPTION_KEY' : `${this.config.dataDir}/encryption.key`;
    switch (fault) {
      case 'key_changed':
        return `Integrated account ${id} cannot be used by this unicrm process; nothing was sent or stored. ${this.keyChangedAdvice()}`;
      case 'credentials_unreadable':
        return (
          `Integrated account ${id} cannot be used: its stored credentials fail their integrity check under the data ` +
          `directory's key (${keyLocation}): the row was altered in the database, or sealed by a process that held ` +
          'another key (one that kept running through a key rotation). They were not used. Store them again with ' +
          `PATCH /integrated-account/${id} and the whole context, secrets included (${this.contextKeys(account)}), ` +
          'or restore a backup made before the damage (unicrm restore).'
        );
      case 'public_context_unreadable':
        return (
          `Integrated account ${id} cannot be used: its stored context (the part without secrets) is not a JSON object; ` +
          `the row was altered in the database. Its credentials are intact: PATCH /integrated-account/${id} with ` +
          '{"context": {}} writes that context again from them.'
        );
      case 'integration_unknown':
        return (
          `Integrated account ${id} cannot be used: it belongs to the integration "${account.integration}", which this ` +
          `unicrm does not have (it has: ${this.registry.names().join(', ')}). Run a unicrm version with the ` +
          `${account.integration} connector on this data directory.`
        );
    }
  }

  /** Why this process's key no longer fits its data directory, and what to do: the end of every `key_changed` message. */
  private keyChangedAdvice(): string {
    const keyLocation = this.config.encryptionKey ? 'UNICRM_ENCRYPTION_KEY' : `${this.config.dataDir}/encryption.key`;
    return (
      `The encryption key this process loaded at start no longer opens the data directory ${this.config.dataDir}: ` +
      'another process changed the key (unicrm keys rotate --master, or unicrm restore) while this one was running. Restart ' +
      `this process (the API: stop it and start it again) so that it loads the current key from ${keyLocation}; if ` +
      `the key was not meant to change, put back the key the data was written with (${keyLocation}) first.`
    );
  }

  /** The context keys of an account, for messages: its stored public keys and its integration's secret keys. */
  private contextKeys(account: StoredAccount): string {
    const secrets = this.registry.byName(account.integration)?.secretContextKeys ?? [];
    const keys = [...new Set([...Object.keys(account.publicContext), ...secrets])];
    return keys.length > 0 ? keys.join(', ') : 'every field';
  }

  /**
   * Records that the provider rejected the account's credentials (DESIGN.md §3), unless the account changed
   * since `account` was read (new credentials arrived while the rejected call was under way). The next
   * {@link load} reads the account again (and sees `needs_reauth`).
   */
  async markNeedsReauth(account: StoredAccount, reason: string): Promise<void> {
    const at = this.clock.now().toISOString();
    const after: StoredAccount = { ...account, status: 'needs_reauth', lastError: reason, updatedAt: at };
    // Only an account that was usable reports the error: a second 401 on an account already in needs_reauth is silent.
    const events = account.status === 'needs_reauth' ? [] : [this.event('integrated_account:authentication_error', after, at)];
    await this.store.setStatus(account.environmentId, account.id, 'needs_reauth', reason, at, account.updatedAt, events);
    this.forget(account.environmentId, account.id);
  }

  /**
   * Stores the context of an account whose OAuth tokens were just refreshed (core's OAuthRefresher): sealed
   * like every secret, the public context (e.g. `expires_at`) updated. When the stored account changed since `account`
   * was read (new credentials sent meanwhile), the stored one wins: nothing is written, and the refreshed context is
   * returned for this call only.
   * @returns the account with the new context (frozen)
   * @throws UnicrmError 404 when the account was deleted meanwhile; 500 when the store refuses the write
   */
  /**
   * The account as the store holds it now, not as cached (another node may have changed it a moment ago), or
   * undefined when it is gone.
   */
  async stored(environmentId: string, id: string): Promise<StoredAccount | undefined> {
    return this.store.get(environmentId, id);
  }

  async saveRefreshedContext(account: StoredAccount, context: Record<string, unknown>, requestId?: string): Promise<StoredAccount> {
    const connector = this.registry.get(account.integration);
    const next: StoredAccount = {
      ...account,
      context,
      publicContext: this.publicContext(connector, context),
      updatedAt: this.clock.now().toISOString(),
    };
    const stored = await this.store.get(account.environmentId, account.id);
    if (!stored) throw this.notFound(account.id);
    if (stored.updatedAt !== account.updatedAt) {
      this.logger.warn({ req_id: requestId, integrated_account_id: account.id }, 'OAuth tokens refreshed, but the account changed meanwhile: not stored');
      return Object.freeze({ ...next, updatedAt: account.updatedAt });
    }
    // Past the stored time, so that every copy read before compares older (same-millisecond writes included).
    if (next.updatedAt <= account.updatedAt) next.updatedAt = new Date(Date.parse(account.updatedAt) + 1).toISOString();
    const updated = await this.write(() => this.store.update(next), account, requestId);
    this.forget(account.environmentId, account.id);
    if (!updated) throw this.notFound(account.id);
    return Object.freeze(next);
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
    // The secrets the account holds (a connector with several auth modes declares more keys than one context has).
    const missing = connector.secretContextKeys.filter((key) => key in current && !(key in patch));
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

  /**
   * An account event for the outbox (issue 17; truto-contract.md §7): its payload is the account as the admin API shows
   * it (secrets stripped), as it is after the change.
   */
  private event(type: WebhookEventType, account: StoredAccount, at: string): OutboxEvent {
    return { id: randomUUID(), environmentId: account.environmentId, event: type, payload: this.present(account) as unknown as Record<string, unknown>, createdAt: at };
  }

  private notFound(id: string): UnicrmError {
    return UnicrmError.notFound(`Integrated account ${id} not found.`);
  }

  private publicContext(connector: Connector, context: Record<string, unknown>): Record<string, unknown> {
    const secrets = new Set(connector.secretContextKeys);
    return Object.fromEntries(Object.entries(context).filter(([key]) => !secrets.has(key)));
  }

  /**
   * The Truto-shaped account, secrets stripped. One that cannot be used has `is_usable: false` and the reason in
   * `last_error` (its stored `status` is kept); an integration without a connector has the category `unknown`.
   */
  present(account: StoredAccount): IntegratedAccount {
    const connector = this.registry.byName(account.integration);
    const fault = this.faultOf(account);
    return {
      id: account.id,
      tenant_id: account.tenantId,
      environment_id: account.environmentId,
      integration: { name: account.integration, category: connector?.category ?? 'unknown' },
      status: account.status,
      is_usable: fault === undefined,
      context: account.publicContext,
      last_error: fault === undefined ? account.lastError : this.faultMessage(account, fault),
      created_at: account.createdAt,
      updated_at: account.updatedAt,
    };
  }
}
