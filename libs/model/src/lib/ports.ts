import type { z } from 'zod';
import type { IntegratedAccount, IntegratedAccountStatus } from './integrated-account';
import type { OutboxEvent } from './connect';
import type { RemoteQuery } from './query';
import type { UnicrmError } from './errors';

/**
 * Dependency-injection tokens (DESIGN.md §1): interfaces are tokens; implementations are registered
 * by `@unicrm/core` and swapped by tests. Symbols from the global registry, so two copies of this
 * module still agree.
 */
export const TOKENS = {
  AccountStore: Symbol.for('unicrm.AccountStore'),
  IdempotencyStore: Symbol.for('unicrm.IdempotencyStore'),
  ApiTokenStore: Symbol.for('unicrm.ApiTokenStore'),
  Clock: Symbol.for('unicrm.Clock'),
  HttpTransport: Symbol.for('unicrm.HttpTransport'),
  Logger: Symbol.for('unicrm.Logger'),
  Config: Symbol.for('unicrm.Config'),
  Connector: Symbol.for('unicrm.Connector'),
  UnifiedResource: Symbol.for('unicrm.UnifiedResource'),
  Metrics: Symbol.for('unicrm.Metrics'),
  AccountLocks: Symbol.for('unicrm.AccountLocks'),
  LinkTokenStore: Symbol.for('unicrm.LinkTokenStore'),
  WebhookStore: Symbol.for('unicrm.WebhookStore'),
} as const;

/** Runtime settings shared by every component. Durations in milliseconds. */
export interface UnicrmConfig {
  /** Directory of the SQLite database and the key file (`UNICRM_DATA_DIR`, default `./.unicrm`). */
  dataDir: string;
  /**
   * Deadline of one provider call as a whole, from the moment it is made (waiting for a pooled connection included)
   * to the last byte of the answer (DESIGN.md §3: default 30 000; issue 12: a deadline, not a per-phase timeout).
   */
  remoteTimeoutMs: number;
  /** TCP/TLS connect timeout of a provider call (default 10 000). */
  connectTimeoutMs: number;
}

/** Source of the current time (tests fix it). */
export interface Clock {
  now(): Date;
}

/** The logging calls unicrm makes (a subset of pino's interface). Never pass secrets. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** One outgoing HTTP request. `url` is absolute and includes the query string. */
export interface HttpRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  url: string;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

/** A complete HTTP answer; header names lower-case. */
export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[]>;
  bodyText: string;
}

/**
 * Outgoing HTTP with connection reuse per origin. Implementations never retry a request on their own
 * (DESIGN.md §3: a POST is never retried once its bytes may have reached the provider) and throw
 * `UnicrmError` 502 when the provider cannot be reached or its answer breaks off, 504 when the call's deadline
 * (`UnicrmConfig.remoteTimeoutMs`, the whole call) passes. An abort of `HttpRequest.signal` ends the call at once,
 * even while it waits for a connection, with the signal's reason when that is a `UnicrmError`.
 * `requestMayHaveArrived` is set on every failure after which the provider may have received the request.
 */
export interface HttpTransport {
  request(request: HttpRequest): Promise<HttpResponse>;
  close(): Promise<void>;
}

/**
 * Why a stored account cannot be used. The store still returns such an account (so that it can be listed, shown,
 * repaired and deleted); the use cases refuse to call a provider with it (docs/reliability.md, "Unusable accounts").
 * - `key_changed`: this process's encryption key no longer opens the data directory: another process rotated the
 *   key (or replaced the database) while this one was running. Every account of the process reads so.
 * - `credentials_unreadable`: its sealed context does not open under the data directory's key: the row was altered,
 *   copied from another row, or written by a process that held another key.
 * - `public_context_unreadable`: its stored public context is not a JSON object (altered in the database).
 * - `integration_unknown`: no connector of this unicrm handles its integration (set by the core, not the store).
 */
export type AccountFault = 'key_changed' | 'credentials_unreadable' | 'public_context_unreadable' | 'integration_unknown';

/** What the store keeps of an integrated account; `context` holds the decrypted secrets. */
export interface StoredAccount {
  id: string;
  environmentId: string;
  tenantId: string;
  integration: string;
  status: IntegratedAccountStatus;
  /** Full context, secrets included (decrypted). Never leaves the process. `{}` when the credentials are unreadable. */
  context: Record<string, unknown>;
  /** Context without secrets, as the admin API shows it. `{}` when it is unreadable. */
  publicContext: Record<string, unknown>;
  /** Set when the account cannot be used as stored; absent when it can. */
  fault?: AccountFault;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
}

/** `AccountStore.list` was given a cursor it did not make (a caller's mistake: a 400). */
export class InvalidCursorError extends Error {
  constructor() {
    super('is not a cursor this API gave out');
    this.name = 'InvalidCursorError';
  }
}

/**
 * An account write was refused because the data directory's encryption key is no longer the one this process
 * holds (another process rotated it, or replaced the database, while this one was running): what it would seal
 * could not be read by anyone else. Nothing was written; the process must be restarted to load the current key.
 */
export class EncryptionKeyChangedError extends Error {
  constructor(dataDescription: string) {
    super(`The encryption key of ${dataDescription} changed while this process was running; nothing was written.`);
    this.name = 'EncryptionKeyChangedError';
  }
}

/** Persistence of integrated accounts (DESIGN.md §4–5). Secrets are encrypted at rest by the implementation. */
export interface AccountStore {
  /**
   * @param events account events written in the same transaction (the webhook outbox: issue 17); none when absent
   * @throws EncryptionKeyChangedError when the data's key is no longer this store's (nothing written)
   */
  create(account: StoredAccount, events?: readonly OutboxEvent[]): Promise<void>;
  /**
   * The account with this id in this environment, or undefined (other environments' accounts are invisible).
   * An account whose stored data cannot be read is returned with `fault` set, never thrown.
   */
  get(environmentId: string, id: string): Promise<StoredAccount | undefined>;
  /**
   * A page of the environment's accounts, oldest first; unreadable accounts are in it with `fault` set.
   * @throws InvalidCursorError when `cursor` is not one this store made
   */
  list(environmentId: string, query: AccountListQuery): Promise<AccountPage>;
  /**
   * Replaces the stored account (context re-encrypted); false when there was none.
   * @param events written in the same transaction, only when the account was replaced
   * @throws EncryptionKeyChangedError when the data's key is no longer this store's (nothing written)
   */
  update(account: StoredAccount, events?: readonly OutboxEvent[]): Promise<boolean>;
  /** Removes the account; false when there was none. `events` are written in the same transaction, only when removed. */
  delete(environmentId: string, id: string, events?: readonly OutboxEvent[]): Promise<boolean>;
  /**
   * Sets the status (and last error); no-op when the account is gone, or when `ifUpdatedAt` is given and the
   * account was updated since. `events` are written in the same transaction, only when the status was set.
   * @returns true when the status was set
   */
  setStatus(
    environmentId: string,
    id: string,
    status: IntegratedAccountStatus,
    lastError: string | null,
    at: string,
    ifUpdatedAt?: string,
    events?: readonly OutboxEvent[],
  ): Promise<boolean | void>;
  /**
   * A number that changes whenever what this store returns may have changed: after a write through this store
   * (`create`, and `update`, `delete`, `setStatus` when they changed a row), and after anything else, in this
   * process or another one sharing the storage (the CLI on the same data directory: `accounts update|remove`,
   * `keys rotate`), committed a change. Equal stamps from two calls mean nothing changed in between, so an account
   * read after the first call may be used instead of reading it again. It may change without a relevant change
   * (that only costs a re-read); it never stays equal across one. Cheap enough to call on every request.
   */
  changeStamp(): number;
}

/** An API token's record; the token itself is never stored, only its SHA-256. Times RFC 3339 UTC. */
export interface ApiTokenRecord {
  id: string;
  name: string;
  environmentId: string;
  createdAt: string;
  /** After this instant the token is refused; null = never expires. */
  expiresAt: string | null;
  /** When it was revoked; null = not revoked. */
  revokedAt: string | null;
}

/** Persistence of API tokens. */
export interface ApiTokenStore {
  /** Stores a token by hash. */
  add(record: ApiTokenRecord, tokenHash: Buffer): Promise<void>;
  /** The record of the token with this SHA-256 (revoked and expired ones included), or undefined. */
  findByHash(tokenHash: Buffer): Promise<ApiTokenRecord | undefined>;
  /** Every token, oldest first. */
  list(): Promise<ApiTokenRecord[]>;
  /** Marks a token revoked; false when there is no such token or it was revoked already. */
  revoke(id: string, at: string): Promise<boolean>;
  count(): Promise<number>;
  /**
   * A number that changes whenever what this store returns may have changed: after `add` or a successful
   * `revoke` here, and after anything else, in this process or another one sharing the storage (`unicrm tokens
   * revoke` on the same data directory), committed a change. Equal stamps from two calls mean nothing changed in
   * between, so a record read after the first call may be used instead of reading it again. It may change
   * without a relevant change; it never stays equal across one. Cheap enough to call on every request.
   */
  changeStamp(): number;
}

/** Filters and page of an account listing (truto-contract.md §4.3). */
export interface AccountListQuery {
  tenantId?: string;
  status?: IntegratedAccountStatus;
  integration?: string;
  /** Page size. */
  limit: number;
  /** Opaque position after which the page starts (from a previous page's `nextCursor`). */
  cursor?: string;
}

/** One page of accounts, oldest first; `nextCursor` null on the last page. */
export interface AccountPage {
  accounts: StoredAccount[];
  nextCursor: string | null;
}

/** A stored answer for an idempotency key (IETF draft-ietf-httpapi-idempotency-key-header). */
export interface IdempotencyRecord {
  /**
   * `in_flight` while a request holds the key, `done` once its answer is stored, `ambiguous` when it failed
   * in a way that may have left the write done at the provider (see `UnicrmError.requestMayHaveArrived`).
   */
  state: 'in_flight' | 'done' | 'ambiguous';
  /** SHA-256 (hex) of the request the key was first used with. */
  fingerprint: string;
  statusCode: number | null;
  /** The answer's JSON body, as text (the error body for an error). */
  body: string | null;
  /** The provider's exact text, for the raw format. */
  rawText: string | null;
  headers: Record<string, string>;
  /** RFC 3339 UTC: when the key was claimed; for an `ambiguous` record, when the failure happened. */
  createdAt: string;
  /** RFC 3339 UTC: when the record stops being replayed (the TTL). */
  expiresAt: string;
  /**
   * The random token of the request that last claimed or took over the key. Every write of the holder is
   * conditional on it, so a holder that lost the key cannot overwrite its new holder's record.
   */
  claimToken: string;
  /**
   * RFC 3339 UTC: while `in_flight`, the holder is alive until then; it renews this while it runs. An in-flight
   * record whose lease ended was abandoned (its process died) and may be taken over.
   */
  leaseExpiresAt: string;
}

/** The hold of one request on an idempotency key: its claim token and the end of its lease (RFC 3339 UTC). */
export interface IdempotencyLease {
  token: string;
  expiresAt: string;
}

/**
 * Persistence of idempotency records, keyed by a scope hash (environment, account, method, path, key). Every
 * write after the claim is conditional on the claim token of its caller (one conditional statement each), so
 * that two requests that both read a record cannot both take it over, and a request that lost its key cannot
 * overwrite the record of the one that took it. Times are RFC 3339 UTC strings of the same length (ordered as text).
 */
export interface IdempotencyStore {
  /**
   * Claims `scope` for a new request: inserts an `in_flight` record held by `lease` unless one exists.
   * @returns undefined when claimed, else the existing record
   */
  claim(scope: string, fingerprint: string, createdAt: string, expiresAt: string, lease: IdempotencyLease): Promise<IdempotencyRecord | undefined>;
  /**
   * Extends the leases of in-flight records still held by these tokens to `leaseExpiresAt`.
   * @returns how many were extended (fewer than given when a record was taken over or finished)
   */
  renew(holds: ReadonlyArray<{ scope: string; token: string }>, leaseExpiresAt: string): Promise<number>;
  /** Stores the final answer of a scope held by `token`; false (nothing written) when `token` no longer holds it. */
  complete(scope: string, token: string, answer: { statusCode: number; body: string; rawText: string | null; headers: Record<string, string> }): Promise<boolean>;
  /** Drops the record held by `token` (a failure that must not be replayed); false when `token` no longer holds it. */
  release(scope: string, token: string): Promise<boolean>;
  /**
   * Marks the scope held by `token` `ambiguous` at `at` (its `createdAt` becomes the failure time): its write may
   * have happened. False when `token` no longer holds it.
   */
  markAmbiguous(scope: string, token: string, at: string): Promise<boolean>;
  /**
   * Takes a key over from a request that no longer holds it: an `ambiguous` record, or an `in_flight` one whose
   * lease ended at or before `now`; only if its claim token is still `expectedToken` (what the caller read). One
   * conditional update: of two requests that read the same record, one wins. The record becomes `in_flight`, held
   * by `lease`; `createdAt` is kept.
   * @returns true when this caller now holds the key
   */
  takeOver(scope: string, expectedToken: string, lease: IdempotencyLease, now: string): Promise<boolean>;
  /** Deletes records that expired before `now`; returns how many. */
  prune(now: string): Promise<number>;
}

/**
 * What the core reports for operators' metrics (issue 14 item 6; the API turns it into Prometheus metrics). Every
 * method must be cheap and must not throw.
 */
export interface MetricsObserver {
  /**
   * One connector call to a provider ended.
   * @param outcome `ok`, the provider's HTTP status of an error answer (`429`, `500`…), or `error` (no answer: a
   *   timeout, a reset, an invalid body)
   * @param seconds its duration, from its slot in the account's bulkhead to its end
   */
  providerCall(integration: string, outcome: string, seconds: number): void;
  /** An Idempotency-Key was answered from its record (`replayed`) or refused while held or settling (`conflict`). */
  idempotency(event: 'replayed' | 'conflict'): void;
  /** A lookup in one of the core's caches (`accounts`, `tokens`) was answered from memory (`hit`) or not. */
  cache(cache: 'accounts' | 'tokens', hit: boolean): void;
}

/** What a front door may learn about a request the core served: the integration of its account, once known. */
export interface RequestObservation {
  integration?: string;
}

/**
 * Named locks for work that must not run twice at once for one account (an OAuth refresh): across every node that
 * shares the store on PostgreSQL; within this process only on SQLite (one host, where the API is the only writer).
 */
export interface AccountLocks {
  /**
   * Runs `work` while holding the lock `name`, waiting for it while another holder has it.
   * @throws Error when the lock cannot be had (the store is unreachable, or the wait exceeded its bound), or what
   *   `work` throws
   */
  withLock<T>(name: string, work: () => Promise<T>): Promise<T>;
}

/** One counted request of a shared rate-limit counter. */
export interface RateLimitHit {
  /** Requests counted in the key's current window, this one included (0: no window under way). */
  hits: number;
  /** When the window ends (undefined: no window under way). */
  resetAt?: Date;
}

/** One limit a request is counted against: its key, window (ms) and limit (requests per window). */
export interface RateLimitCheck {
  key: string;
  windowMs: number;
  limit: number;
}

/**
 * Fixed-window request counters shared by every node (issue 14 item 3): the API's per-token and per-account limits
 * count each node's requests in one place. Windows are timed by the store's clock, never a node's.
 */
export interface RateLimitCounterStore {
  /**
   * Counts one request of `key`: a new window of `windowMs` starts when there is none or the last one ended.
   * @throws Error when the store cannot be reached (the caller decides to fail open or closed)
   */
  increment(key: string, windowMs: number): Promise<RateLimitHit>;
  /** The count of `key`'s current window without counting, or undefined when it has none. @throws Error as above */
  get(key: string): Promise<RateLimitHit | undefined>;
  /**
   * Counts one request against several limits in one round trip, in order: once a limit is over (`hits > limit`), the
   * ones after it are read, not counted (a refused request uses no one else's quota).
   * @returns one hit per check, in the same order
   * @throws Error as above
   */
  count(checks: ReadonlyArray<RateLimitCheck>): Promise<RateLimitHit[]>;
}

/** What a connector is handed of an integrated account. */
export interface ConnectorAccount {
  id: string;
  integration: string;
  context: Record<string, unknown>;
}

/** The remote half of a result: the provider's answer, for the `raw` format. */
export interface RemoteResult {
  status: number;
  /** The body as the provider sent it, byte for byte (decoded as UTF-8). */
  bodyText: string;
  /** The same body parsed as JSON. */
  body: unknown;
}

/** One record answered by the provider: the unified object and the raw answer (for the `raw` format). */
export interface ItemResult<T = Record<string, unknown>> {
  unified: T;
  remote: RemoteResult;
}

/** A create answered by the provider (kept name: an {@link ItemResult}). */
export type CreateResult<T> = ItemResult<T>;

/**
 * One page of a list answered by the provider: the unified records in the provider's order, the page as the provider
 * sent it (the `raw` format), and the provider's own cursors to the neighbouring pages (opaque to core, which wraps
 * them in cursors of its own), null where there is none.
 */
export interface ListPageResult<T = Record<string, unknown>> {
  items: T[];
  remote: RemoteResult;
  nextCursor: string | null;
  prevCursor: string | null;
}

/** Options of a connector call. */
export interface CallOptions {
  /** Provider query parameters from `remote_query`; they win over ones the connector sets. */
  remoteQuery: RemoteQuery;
  signal?: AbortSignal;
  /** Id of the request being served (`x-request-id`), for the `req_id` field of every log line written for it. */
  requestId?: string;
}

/** What every connector method is declared with (STYLE.md: "each action declares its inputs, output and whether it is safe to retry"). */
export interface MethodDeclaration {
  /**
   * True when running the method twice has the effect of running it once (reads; an update that sets values; a
   * delete), so a call that failed after its request may have reached the provider can simply run again. False for
   * a create: core then keeps the Idempotency-Key ambiguous and looks for the result before writing again.
   */
  readonly retrySafe: boolean;
  /** One line for the meta endpoint and docs/integrations.md: what the method does at the provider. */
  readonly description: string;
}

/** A list method: a page of records, filtered. */
export interface ListMethod<T = Record<string, unknown>, F = Record<string, unknown>> extends MethodDeclaration {
  /** The filters this integration applies, as query parameters; a parameter it does not declare is a 400. */
  readonly filterSchema: z.ZodType<F>;
  /** Page sizes: the default and the largest the provider serves in one page (larger `limit`s are lowered to it). */
  readonly pageSize: { readonly default: number; readonly max: number };
  /**
   * @param page `limit` (1..max), and the provider cursor of the page to read (from a previous {@link ListPageResult}) with its direction
   * @throws UnicrmError (remote errors mirrored, 502, 504; 400 for a filter the provider cannot combine)
   */
  list(account: ConnectorAccount, filters: F, page: { limit: number; cursor?: string; direction: 'next' | 'prev' }, options: CallOptions): Promise<ListPageResult<T>>;
}

/** A get method: one record by id. */
export interface GetMethod<T = Record<string, unknown>> extends MethodDeclaration {
  /** @throws UnicrmError (the provider's 404 mirrored, other remote errors, 502, 504) */
  get(account: ConnectorAccount, id: string, options: CallOptions): Promise<ItemResult<T>>;
}

/** A create method. */
export interface CreateMethod<T = Record<string, unknown>, B = Record<string, unknown>> extends MethodDeclaration {
  /**
   * The create body as this integration accepts it: the unified body schema narrowed by the integration's rules
   * (required fields, accepted values). Core validates every body with it; the meta endpoint serves it as JSON Schema.
   */
  readonly bodySchema: z.ZodType<B>;
  /** @throws UnicrmError 400 (a rule only the connector can check), remote errors mirrored, 502, 504 */
  create(account: ConnectorAccount, body: B, options: CallOptions): Promise<ItemResult<T>>;
  /**
   * Looks for a record that an earlier attempt of the same create may have made (after a timeout or a broken
   * answer): the newest one matching `body` created at or after `since`.
   * @returns the record as `create` would have answered it, or undefined when there is none
   */
  findCreated?(account: ConnectorAccount, body: B, since: Date, options: CallOptions): Promise<ItemResult<T> | undefined>;
}

/** An update method: changes some fields of one record. */
export interface UpdateMethod<T = Record<string, unknown>, B = Record<string, unknown>> extends MethodDeclaration {
  /** The update body this integration accepts (see {@link CreateMethod.bodySchema}). */
  readonly bodySchema: z.ZodType<B>;
  /** @throws UnicrmError 400 (a field the provider cannot change), remote errors mirrored, 502, 504 */
  update(account: ConnectorAccount, id: string, body: B, options: CallOptions): Promise<ItemResult<T>>;
}

/** A delete method. */
export interface DeleteMethod<T = Record<string, unknown>> extends MethodDeclaration {
  /**
   * @returns the deleted record as the provider now shows it (unified), and the provider's answer to the delete (raw)
   * @throws UnicrmError (the provider's 404 for an unknown or already deleted record, other remote errors, 502, 504)
   */
  delete(account: ConnectorAccount, id: string, options: CallOptions): Promise<ItemResult<T>>;
}

/** One write of a batch, as core hands it to a connector's {@link BatchMethod}: already validated with the method's schema. */
export interface BatchWrite<B = Record<string, unknown>> {
  method: 'create' | 'update';
  /** The record's id, for an update. */
  id?: string;
  /** The body as the integration's `bodySchema` of the method parsed it. */
  body: B;
}

/** What one write of a batch came to: the record, or the error its single request would have answered. */
export type BatchWriteOutcome<T = Record<string, unknown>> = { ok: true; result: ItemResult<T> } | { ok: false; error: UnicrmError };

/**
 * A provider's bulk write (Pipeliner `batch-modify`), or a connector's own way to write many records with fewer calls
 * than one per record (HubSpot: one pipeline read for many stage creates). Core chunks a batch into calls of at most
 * `maxItems` writes of the declared `methods`; other writes go through the single methods (docs/contract.md "Batch writes").
 */
export interface BatchMethod extends MethodDeclaration {
  /** The most writes one call of {@link write} takes. */
  readonly maxItems: number;
  /** The methods it writes. */
  readonly methods: readonly ('create' | 'update')[];
  /**
   * Writes every write of `writes` (at most `maxItems`).
   * @param options `representation`: `minimal` when the caller only needs each record's `id` (then `ItemResult.unified`
   *   may hold only `id`, sparing reads)
   * @returns one outcome per write, in order; a write the provider refused is an outcome with its error, not a throw
   * @throws UnicrmError when the call as a whole failed (remote errors mirrored, 502, 504): no outcome is known
   */
  write(account: ConnectorAccount, writes: ReadonlyArray<BatchWrite>, options: CallOptions & { representation: 'representation' | 'minimal' }): Promise<BatchWriteOutcome[]>;
}

/**
 * What a connector serves of one unified resource: the methods it declares. A method it leaves out answers 501
 * naming the integration (DESIGN.md §6); adding one is a function and a schema, no route.
 */
export interface ConnectorResource {
  readonly list?: ListMethod;
  readonly get?: GetMethod;
  readonly create?: CreateMethod;
  readonly update?: UpdateMethod;
  readonly delete?: DeleteMethod;
  /** Batch writes with fewer provider calls than one per record; absent: core writes a batch's items one by one. */
  readonly batch?: BatchMethod;
}

/** A request to the provider's own API through `/proxy/<resource>[/<id>]` (truto-contract.md §5.4). */
export interface ProxyRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** The provider's resource name as in the path (Pipeliner: an entity collection, `Steps`). */
  resource: string;
  id?: string;
  /** Query parameters to forward, as qs parsed them (unicrm's own parameters removed). */
  query: Record<string, unknown>;
  /** The JSON body's text, for POST and PATCH. */
  bodyText?: string;
  /** Request headers the connector may forward (lower-case names; it picks the ones it allows). */
  headers: Record<string, string>;
  /** For a list (GET without id): the page size and the provider cursor to continue from. */
  page?: { limit?: number; cursor?: string; direction: 'next' | 'prev' };
}

/** The provider's answer to a {@link ProxyRequest}. */
export interface ProxyResponse {
  status: number;
  /** Response headers safe to send back (content type, rate-limit headers, ...). */
  headers: Record<string, string>;
  bodyText: string;
  /** For a list: the records and the provider's cursors, which core puts in the list envelope. */
  list?: { items: unknown[]; nextCursor: string | null; prevCursor: string | null };
}

/** A connector's passthrough to the provider's own API, under the account's credentials and the outbound policy. */
export interface ProxyHandler {
  /** The largest page the provider serves (a larger `limit` is lowered to it), and its default. */
  readonly pageSize: { readonly default: number; readonly max: number };
  /**
   * Sends one request; a non-2xx answer is thrown as the remote error of DESIGN.md §3.
   * @throws UnicrmError 400 (a resource name the provider cannot have), remote errors mirrored, 502, 504
   */
  request(account: ConnectorAccount, request: ProxyRequest, options: Omit<CallOptions, 'remoteQuery'>): Promise<ProxyResponse>;
}

/** The request that refreshes an account's OAuth tokens: sent as is by core (a POST). */
export interface OAuthRefreshRequest {
  /** The token endpoint, absolute (already through the outbound policy: it comes from a parsed context or the connector). */
  url: string;
  headers: Record<string, string>;
  /** The body, already encoded (`application/x-www-form-urlencoded` for RFC 6749 §6). */
  body: string;
}

/**
 * How a connector's accounts refresh their OAuth access tokens (RFC 6749 §6). The connector only says how; core does
 * it for every connector alike (docs/reliability.md "OAuth refresh"): before `expiresAt` and once after a remote 401,
 * one refresh in flight per account in the process however many calls wait on it, the new context sealed through the
 * account store, and a refused refresh (the token endpoint's 400 or 401) marks the account `needs_reauth`.
 */
export interface OAuthRefreshDeclaration {
  /**
   * The OAuth state of a context: its access token and when it expires (undefined: unknown, refreshed only after a
   * 401); undefined when the context does not use OAuth (an API-token account), so core does nothing for it.
   */
  tokens(context: Record<string, unknown>): { accessToken: string; expiresAt?: Date } | undefined;
  /** The refresh request for a context that {@link tokens} reported. */
  refreshRequest(context: Record<string, unknown>): OAuthRefreshRequest;
  /**
   * The context with the tokens of a successful (2xx) token answer.
   * @param answer the answer's body, parsed as JSON
   * @param now when the answer arrived (`expires_in` counts from it)
   * @throws Error when the answer holds no usable access token (core answers 502)
   */
  applyRefresh(context: Record<string, unknown>, answer: unknown, now: Date): Record<string, unknown>;
}

/** An OAuth app of an integration, as the operator configured it (`UNICRM_OAUTH_<INTEGRATION>_*`). */
export interface OAuthApp {
  clientId: string;
  clientSecret: string;
  /** The provider's authorization page (the connector's, unless configured: a sandbox's). */
  authorizeUrl: string;
  /** The provider's token endpoint (likewise). */
  tokenUrl: string;
  /** The scopes asked for on the consent page (the connector's {@link OAuthConsentDeclaration.scopes}, unless configured). */
  scopes: readonly string[];
}

/**
 * How an end customer connects an integration through the provider's consent page (OAuth 2 authorization code grant,
 * RFC 6749 §4.1) on the connect page (docs/connect.md "OAuth"). Core sends the browser to `authorizeUrl` with
 * `response_type=code`, `client_id`, `redirect_uri`, `scope` (when there are scopes) and a `state` it checks on return,
 * then exchanges the code.
 */
export interface OAuthConsentDeclaration {
  /** The provider's authorization page (`https://oauth.pipedrive.com/oauth/authorize`). */
  readonly authorizeUrl: string;
  /**
   * The scopes to ask for, sent space-separated as `scope` (RFC 6749 §3.3) when not empty. Absent or empty: no `scope`
   * (the provider uses the app's own, as Pipedrive does). HubSpot requires it.
   */
  readonly scopes?: readonly string[];
  /** The provider's token endpoint. */
  readonly tokenUrl: string;
  /** The token request that exchanges `code` (sent as is by core, a POST). */
  codeRequest(code: string, redirectUri: string, app: OAuthApp): OAuthRefreshRequest;
  /**
   * The account context of a successful (2xx) token answer.
   * @param answer the answer's body, parsed as JSON
   * @param now when the answer arrived (`expires_in` counts from it)
   * @throws Error when the answer holds no usable tokens (core shows a 502-like failure)
   */
  contextOf(answer: unknown, app: OAuthApp, now: Date): Record<string, unknown>;
}

/**
 * A CRM connector: one per integration, registered under `TOKENS.Connector` and picked by the
 * registry by `integration` (DESIGN.md §1). It declares what it supports; core and the route table read the
 * declaration and never switch on the integration.
 */
export interface Connector {
  /** Integration name, as in an account's `integration` (`pipeliner`). */
  readonly integration: string;
  /** The integration's name for people (`Pipeliner`), in messages. */
  readonly displayName: string;
  /** Integration category (`crm`). */
  readonly category: string;
  /**
   * Validates an account context for this integration and returns it normalised.
   * @throws UnicrmError 400 with `details.failures` (paths under `context.`).
   */
  parseContext(context: unknown): Record<string, unknown>;
  /**
   * Checks a context's credentials with one cheap call to the provider.
   * @throws UnicrmError as for any call: remote errors (401/403 for rejected credentials), 502, 504
   */
  verifyCredentials?(context: Record<string, unknown>, signal?: AbortSignal): Promise<void>;
  /** Context keys that are secrets: encrypted at rest and never shown. */
  readonly secretContextKeys: readonly string[];
  /**
   * The context an end customer types on the connect page (issue 17, docs/connect.md): a zod object whose properties
   * become the form's fields, in order. Each property's `title` (zod `.meta({ title })`) is its label and its
   * `description` (`.describe()` or `.meta({ description })`) the help text under it (say where in the CRM to find the
   * value); keys in {@link secretContextKeys} are password fields; optional properties are optional fields. What is
   * typed is checked by {@link parseContext} and {@link verifyCredentials}, as for `POST /integrated-account`. Absent:
   * the integration is not offered on the connect page.
   */
  readonly contextSchema?: z.ZodType;
  /** The provider's consent flow, when the integration offers OAuth on the connect page (and its app is configured). */
  readonly oauthConsent?: OAuthConsentDeclaration;
  /**
   * Context keys that decide where the secrets are sent (Pipeliner: `service_url`). Changing one requires
   * sending every secret again, so a caller who can edit an account cannot redirect its stored credentials.
   */
  readonly credentialBoundContextKeys?: readonly string[];
  /** The unified resources it serves, by `model/resource` (`crm/stages`); an absent resource answers 501. */
  readonly resources: Readonly<Record<string, ConnectorResource>>;
  /** The passthrough to the provider's own API (`/proxy/...`); absent: 501. */
  readonly proxy?: ProxyHandler;
  /** How its accounts refresh OAuth tokens, when they may use OAuth; absent: never refreshed. */
  readonly oauth?: OAuthRefreshDeclaration;
}

export type { IntegratedAccount };
