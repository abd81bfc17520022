import 'reflect-metadata';
import { HubSpotConnector } from '@unicrm/connector-hubspot';
import { PipedriveConnector } from '@unicrm/connector-pipedrive';
import { PipelinerConnector } from '@unicrm/connector-pipeliner';
import {
  type AccountStore,
  type ApiTokenStore,
  BUILT_IN_RESOURCES,
  buildOpenApiDocument,
  type Clock,
  type HttpTransport,
  type IdempotencyStore,
  type LinkTokenStore,
  type RateLimitCounterStore,
  type WebhookStore,
  TOKENS,
  type UnicrmConfig,
} from '@unicrm/model';
import {
  claimServing,
  type DataDirectoryClaim,
  openDataDirectory,
  parseEncryptionKey,
  PostgresAccountLocks,
  PostgresAccountStore,
  PostgresApiTokenStore,
  PostgresDatabase,
  POSTGRES_SCHEMA_VERSION,
  PostgresIdempotencyStore,
  PostgresLinkTokenStore,
  PostgresRateLimitStore,
  type DataKeyRotation,
  Keyring,
  openSqliteKeyring,
  PostgresDataKeyTable,
  rotateDataKey,
  type RotateDataKeyOptions,
  PostgresWebhookStore,
  rotateEncryptionKey,
  type RotateResult,
  SqliteDataKeyTable,
  SecretBox,
  SqliteAccountStore,
  SqliteApiTokenStore,
  SqliteIdempotencyStore,
  SqliteLinkTokenStore,
  SqliteWebhookStore,
} from '@unicrm/store';
import pino from 'pino';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { IntegratedAccountService } from './accounts';
import { ApiTokenService } from './api-tokens';
import { configFromEnv, type CoreEnvironment } from './config';
import { AccountBulkhead } from './bulkhead';
import { CORE_TOKENS } from './core-tokens';
import { type BatchRequest, BatchUseCase } from './batch';
import { CreateUseCase } from './create';
import { CursorCodec } from './cursors';
import { DeleteUseCase } from './delete';
import { UpdateUseCase } from './update';
import { GetUseCase } from './get';
import { IdempotencyGuard } from './idempotency';
import { ListUseCase } from './list';
import { MetricsHub } from './metrics-hub';
import { OAuthRefresher } from './oauth-refresh';
import { type MetaRequest, type MethodMeta, MetaUseCase } from './meta';
import { type ProxyCall, ProxyUseCase } from './proxy';
import { ConnectorRegistry } from './registry';
import { ConnectService } from './connect';
import { WebhookDispatcher, WebhookService } from './webhooks';
import { PacedTransport, Pacer } from './pacing';
import { ResourceCatalog } from './resource-catalog';
import { UndiciTransport } from './undici-transport';
import { type UnifiedRequest, type UnifiedResponse, UnifiedTargets } from './unified-target';

/** unicrm's version, shown in the OpenAPI document and the SDK's User-Agent. */
export const UNICRM_VERSION = '0.1.0';

/** Options of {@link createUnicrmCore}. */
export interface CreateCoreOptions {
  /** Environment variables to read the configuration from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Settings that win over the environment (`dataDir`, timeouts, `apiToken`, ...). */
  config?: Partial<UnicrmConfig & CoreEnvironment>;
  /** Where logs go: `stdout` (the API) or `stderr` (the SDK and CLI, so stdout stays clean). Default `stdout`. */
  logDestination?: 'stdout' | 'stderr';
  /** A stream to write log lines to instead (tests capture logs with it). */
  logStream?: pino.DestinationStream;
  /** Default log level when `UNICRM_LOG_LEVEL` is unset (default `info`). */
  defaultLogLevel?: string;
  /** Last word on the registrations: tests swap one here (e.g. `TOKENS.HttpTransport`). */
  register?: (container: DependencyContainer) => void;
  /**
   * This core serves the data directory (the HTTP API): it marks the directory as served before opening it, until
   * {@link UnicrmCore.close} or the end of the process (`claimServing` of `@unicrm/store`: a file lock the OS drops
   * with the process, and `<dataDir>/serving/<pid>.json` naming it). `unicrm keys rotate --master` and `restore` refuse
   * while it is marked. A rotation or restore under way is waited for (`waitMs`, default 30 000 ms). Embedded SDK
   * cores and the CLI do not serve. Default false.
   */
  serving?: boolean | { waitMs?: number };
}

/** The one core both apps are front doors to (DESIGN.md §1). */
export interface UnicrmCore {
  readonly config: UnicrmConfig & CoreEnvironment;
  readonly logger: pino.Logger;
  readonly accounts: IntegratedAccountService;
  readonly tokens: ApiTokenService;
  /** Link tokens and the connect page's flow (issue 17). */
  readonly connect: ConnectService;
  /** Webhooks' admin API (issue 17). */
  readonly webhooks: WebhookService;
  /**
   * The webhook worker: the API starts it (`start()`), so that every serving node delivers the outbox's events; an
   * embedded SDK core does not (its events are delivered by a running API on the same storage). Stopped by {@link close}.
   */
  readonly webhookDispatcher: WebhookDispatcher;
  /** Where a front door attaches its metrics (`attach(observer)`); the core reports to every observer attached. */
  readonly metrics: MetricsHub;
  /** The PostgreSQL pool's connections (total, idle, callers waiting), or undefined on SQLite. */
  poolStats(): { total: number; idle: number; waiting: number } | undefined;
  /**
   * Rate-limit counters shared by every node (PostgreSQL), or undefined: each process counts its own (SQLite).
   */
  readonly rateLimitCounters?: RateLimitCounterStore;
  /**
   * The unified API (DESIGN.md §6): one use case per method, for any resource of the catalog.
   * `list`: `GET /unified/<model>/<resource>`; `get`: `GET .../:id`; `create`: `POST`; `update`: `PATCH .../:id`;
   * `delete`: `DELETE .../:id`; `meta`: `GET .../meta/<method>`.
   */
  readonly unified: {
    list(request: UnifiedRequest): Promise<UnifiedResponse>;
    get(request: UnifiedRequest): Promise<UnifiedResponse>;
    create(request: UnifiedRequest): Promise<UnifiedResponse>;
    /** `POST /unified/<model>/<resource>/batch` (issue 18): many creates and updates, answered per item. */
    batch(request: BatchRequest): Promise<UnifiedResponse>;
    update(request: UnifiedRequest): Promise<UnifiedResponse>;
    delete(request: UnifiedRequest): Promise<UnifiedResponse>;
    meta(request: MetaRequest): Promise<MethodMeta>;
  };
  /** `/proxy/<resource>[/<id>]`: the provider's own API with the account's credentials. */
  proxy(call: ProxyCall): Promise<UnifiedResponse>;
  /**
   * Rotates the data key online (`unicrm keys rotate`, docs/security.md "Rotating"), on SQLite or PostgreSQL while the
   * API nodes serve: a new data key becomes active, every sealed credential is re-sealed with it in batches, and the
   * old key is retired once nothing names it. Run again after an interruption, it finishes the same rotation.
   * @param options `batchSize` (values per batch, default 500), `onProgress` (after each batch)
   * @throws RotationInProgressError when another rotation runs on the same storage (nothing changed)
   */
  rotateDataKey(options?: Pick<RotateDataKeyOptions, 'batchSize' | 'onProgress'>): Promise<DataKeyRotation>;
  /**
   * Replaces the master key of a SQLite data directory (`unicrm keys rotate --master`): wraps the data keys again
   * under it; with `newKey` (hex or base64 of 32 bytes) for a key kept in `UNICRM_ENCRYPTION_KEY`, else a new key
   * file. Refused while an API serves the data directory (see {@link CreateCoreOptions.serving}), and on PostgreSQL.
   * @throws DataDirectoryInUseError naming the serving processes (nothing changed)
   * @throws Error when the rotation failed (nothing changed), the new key is malformed, or the store is PostgreSQL
   */
  rotateEncryptionKey(newKey?: string): RotateResult;
  /**
   * Resolves when the store can serve: at once on SQLite; on PostgreSQL once the migrations are applied (under the
   * advisory lock), the key checked and the change feed listening. The API awaits it before it listens.
   * @throws Error why the store cannot serve (unreachable database, failed migration, a key that does not fit)
   */
  start(): Promise<void>;
  /**
   * Whether this node can serve now (`GET /ready`): the store answers and its schema is this version's.
   * @returns `{ ready, store, detail? }`; never throws
   */
  readiness(): Promise<{ ready: boolean; store: 'sqlite' | 'postgres'; detail?: string }>;
  /** The OpenAPI 3.1 document of the HTTP API. */
  openApiDocument(): Record<string, unknown>;
  /** Closes the outgoing connection pools and the database. */
  close(): Promise<void>;
}

/** pino redaction paths: credentials never reach a log line (DESIGN.md §4). */
export const LOG_REDACT_PATHS = [
  'authorization',
  'password',
  'username',
  'context.password',
  'context.username',
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.authorization',
  '*.password',
  // OAuth and API-token secrets of any connector (Pipedrive's context keys, the x-api-token header).
  'context.api_token',
  'context.access_token',
  'context.refresh_token',
  'context.client_secret',
  '*.api_token',
  '*.access_token',
  '*.refresh_token',
  '*.client_secret',
  '*["x-api-token"]',
];

/**
 * Builds the core: configuration, logger, SQLite store with encrypted secrets, the undici transport,
 * every connector under `TOKENS.Connector`, and the use cases, wired in a child container of
 * tsyringe's root container so that several cores (tests) live side by side.
 * @throws DataDirectoryInUseError with `serving`, when a rotation or restore holds the data directory past the wait
 * @throws Error when the configuration is invalid or the encryption key does not fit the data directory
 */
export function createUnicrmCore(options: CreateCoreOptions = {}): UnicrmCore {
  const config = { ...configFromEnv(options.env ?? process.env), ...options.config };
  const logger = pino(
    {
      level: config.logLevel ?? options.defaultLogLevel ?? 'info',
      base: { service: 'unicrm' },
      redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' },
    },
    options.logStream ?? pino.destination({ fd: options.logDestination === 'stderr' ? 2 : 1, sync: false }),
  );
  let stores: { accounts: AccountStore; tokens: ApiTokenStore; idempotency: IdempotencyStore; linkTokens: LinkTokenStore; webhooks: WebhookStore };
  let box: SecretBox;
  let db: ReturnType<typeof openDataDirectory>['db'] | undefined;
  let postgres: PostgresDatabase | undefined;
  let claim: DataDirectoryClaim | undefined;
  if (config.databaseUrl) {
    // Every node seals and opens secrets with one key: it cannot be a key file that each node would make for itself.
    if (!config.encryptionKey) {
      throw new Error('UNICRM_DATABASE_URL needs UNICRM_ENCRYPTION_KEY: every node must seal and open credentials with the same key (openssl rand -base64 32).');
    }
    box = new SecretBox(parseEncryptionKey(config.encryptionKey));
    postgres = new PostgresDatabase(box, { url: config.databaseUrl, poolSize: config.databasePoolSize });
    stores = {
      accounts: new PostgresAccountStore(postgres, box),
      tokens: new PostgresApiTokenStore(postgres),
      idempotency: new PostgresIdempotencyStore(postgres),
      linkTokens: new PostgresLinkTokenStore(postgres),
      webhooks: new PostgresWebhookStore(postgres, box),
    };
  } else {
    // The claim comes first: a rotation or restore cannot slip in between reading the key and serving with it.
    claim = options.serving ? claimServing(config.dataDir, typeof options.serving === 'object' ? options.serving.waitMs : undefined) : undefined;
    let opened: ReturnType<typeof openDataDirectory>;
    try {
      opened = openDataDirectory(config.dataDir, config.encryptionKey);
    } catch (error) {
      claim?.release();
      throw error;
    }
    db = opened.db;
    box = opened.box;
    stores = {
      accounts: new SqliteAccountStore(opened.db, box),
      tokens: new SqliteApiTokenStore(opened.db),
      idempotency: new SqliteIdempotencyStore(opened.db),
      linkTokens: new SqliteLinkTokenStore(opened.db),
      webhooks: new SqliteWebhookStore(opened.db, box),
    };
  }

  const container = rootContainer.createChildContainer();
  const clock: Clock = { now: () => new Date() };
  container.register(TOKENS.Config, { useValue: config });
  container.register(TOKENS.Clock, { useValue: clock });
  container.register(TOKENS.Logger, { useValue: logger });
  const metrics = new MetricsHub();
  container.register(TOKENS.Metrics, { useValue: metrics });
  container.register(TOKENS.AccountStore, { useValue: stores.accounts });
  container.register(TOKENS.ApiTokenStore, { useValue: stores.tokens });
  container.register(TOKENS.IdempotencyStore, { useValue: stores.idempotency });
  container.register(TOKENS.LinkTokenStore, { useValue: stores.linkTokens });
  container.register(TOKENS.WebhookStore, { useValue: stores.webhooks });
  // One host on SQLite: the process's own single flight is the lock (the CLI does not refresh tokens).
  container.register(TOKENS.AccountLocks, { useValue: postgres ? new PostgresAccountLocks(postgres) : { withLock: <T>(_name: string, work: () => Promise<T>) => work() } });
  // Every connector's provider calls wait for their account's turn (issue 18, docs/contract.md "Pacing").
  const pacer = new Pacer();
  container.register(CORE_TOKENS.Pacer, { useValue: pacer });
  container.register(TOKENS.HttpTransport, { useValue: new PacedTransport(new UndiciTransport(config), pacer) });
  container.register(CORE_TOKENS.CursorCodec, { useValue: new CursorCodec(box.derive('unicrm list cursors v1')) });
  container.register(CORE_TOKENS.ConnectKey, { useValue: box.derive('unicrm connect csrf v1') });
  container.register(TOKENS.Connector, { useClass: PipelinerConnector });
  container.register(TOKENS.Connector, { useClass: PipedriveConnector });
  container.register(TOKENS.Connector, { useClass: HubSpotConnector });
  for (const definition of BUILT_IN_RESOURCES) container.register(TOKENS.UnifiedResource, { useValue: definition });
  for (const singleton of [
    ConnectorRegistry,
    ResourceCatalog,
    IntegratedAccountService,
    ApiTokenService,
    IdempotencyGuard,
    AccountBulkhead,
    OAuthRefresher,
    UnifiedTargets,
    ListUseCase,
    GetUseCase,
    CreateUseCase,
    BatchUseCase,
    UpdateUseCase,
    DeleteUseCase,
    MetaUseCase,
    ProxyUseCase,
    ConnectService,
    WebhookService,
    WebhookDispatcher,
  ]) {
    container.registerSingleton(singleton as new (...args: never[]) => unknown);
  }
  options.register?.(container);

  const list = container.resolve(ListUseCase);
  const get = container.resolve(GetUseCase);
  const create = container.resolve(CreateUseCase);
  const batch = container.resolve(BatchUseCase);
  const update = container.resolve(UpdateUseCase);
  const remove = container.resolve(DeleteUseCase);
  const meta = container.resolve(MetaUseCase);
  const proxy = container.resolve(ProxyUseCase);
  const catalog = container.resolve(ResourceCatalog);
  const webhookDispatcher = container.resolve(WebhookDispatcher);
  let closed = false;
  return {
    config,
    logger,
    accounts: container.resolve(IntegratedAccountService),
    tokens: container.resolve(ApiTokenService),
    connect: container.resolve(ConnectService),
    webhooks: container.resolve(WebhookService),
    webhookDispatcher,
    metrics,
    poolStats: () => postgres && { total: postgres.pool.totalCount, idle: postgres.pool.idleCount, waiting: postgres.pool.waitingCount },
    ...(postgres && { rateLimitCounters: new PostgresRateLimitStore(postgres) }),
    unified: {
      list: (request) => list.execute(request),
      get: (request) => get.execute(request),
      create: (request) => create.execute(request),
      batch: (request) => batch.execute(request),
      update: (request) => update.execute(request),
      delete: (request) => remove.execute(request),
      meta: (request) => meta.execute(request),
    },
    proxy: (call) => proxy.execute(call),
    openApiDocument: () => buildOpenApiDocument(UNICRM_VERSION, catalog.all()),
    async rotateDataKey(rotation = {}) {
      if (postgres) {
        await postgres.started;
        return rotateDataKey(new PostgresDataKeyTable(postgres), new Keyring(box), rotation);
      }
      const sqlite = db as NonNullable<typeof db>;
      return rotateDataKey(new SqliteDataKeyTable(sqlite, config.dataDir), openSqliteKeyring(sqlite, box), rotation);
    },
    rotateEncryptionKey(newKey?: string) {
      if (!db) {
        throw new Error(
          'unicrm keys rotate --master works on the SQLite data directory; with UNICRM_DATABASE_URL (PostgreSQL) the master key cannot be replaced yet (docs/security.md "Rotating"): `unicrm keys rotate` rotates the data keys online. Nothing was changed.',
        );
      }
      let key: Buffer | undefined;
      if (newKey !== undefined) {
        key = /^[0-9a-f]{64}$/i.test(newKey.trim()) ? Buffer.from(newKey.trim(), 'hex') : Buffer.from(newKey.trim(), 'base64');
        if (key.length !== 32) throw new Error('The new key must be 32 bytes, as 64 hex characters or base64 (openssl rand -base64 32).');
      } else if (config.encryptionKey) {
        throw new Error('The key comes from UNICRM_ENCRYPTION_KEY: give the new key (--new-key), then set the variable to it.');
      }
      return rotateEncryptionKey(config.dataDir, db, box, { newKey: key });
    },
    start: async () => {
      await postgres?.started;
    },
    async readiness() {
      if (!postgres) return { ready: true, store: 'sqlite' as const };
      try {
        await postgres.started;
      } catch (error) {
        return { ready: false, store: 'postgres' as const, detail: `the database did not start: ${(error as Error).message}` };
      }
      const version = await postgres.schemaVersion();
      if (version === undefined) return { ready: false, store: 'postgres' as const, detail: 'the database cannot be reached' };
      if (version !== POSTGRES_SCHEMA_VERSION) {
        return { ready: false, store: 'postgres' as const, detail: `the schema is version ${version}, this unicrm needs ${POSTGRES_SCHEMA_VERSION}` };
      }
      return { ready: true, store: 'postgres' as const };
    },
    async close() {
      if (closed) return;
      closed = true;
      await webhookDispatcher.stop();
      await container.resolve<HttpTransport>(TOKENS.HttpTransport).close();
      db?.close();
      await postgres?.close();
      claim?.release();
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    },
  };
}
