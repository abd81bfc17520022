import 'reflect-metadata';
import { PipelinerConnector } from '@unicrm/connector-pipeliner';
import { buildOpenApiDocument, type Clock, type HttpTransport, TOKENS, type UnicrmConfig } from '@unicrm/model';
import {
  claimServing,
  type DataDirectoryClaim,
  openDataDirectory,
  rotateEncryptionKey,
  type RotateResult,
  SqliteAccountStore,
  SqliteApiTokenStore,
  SqliteIdempotencyStore,
} from '@unicrm/store';
import pino from 'pino';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { IntegratedAccountService } from './accounts';
import { ApiTokenService } from './api-tokens';
import { configFromEnv, type CoreEnvironment } from './config';
import { CreateStageUseCase, type CreateStageRequest, type UnifiedResponse } from './create-stage';
import { AccountBulkhead } from './bulkhead';
import { IdempotencyGuard } from './idempotency';
import { ConnectorRegistry } from './registry';
import { type StageCreateMeta, StageMetaUseCase } from './stage-meta';
import { UndiciTransport } from './undici-transport';

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
   * with the process, and `<dataDir>/serving/<pid>.json` naming it). `unicrm keys rotate` and `restore` refuse
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
  /** `POST /unified/crm/stages`. */
  createStage(request: CreateStageRequest): Promise<UnifiedResponse>;
  /** `GET /unified/crm/stages/meta/create`: the schemas of the create for an account's integration (`requestId` for log lines). */
  stageCreateMeta(environmentId: string, query: string | Record<string, unknown>, requestId?: string): StageCreateMeta;
  /**
   * Re-encrypts every stored secret under a new key (`unicrm keys rotate`); with `newKey` (hex or base64 of
   * 32 bytes) for a key kept in `UNICRM_ENCRYPTION_KEY`, else a new key file. Refused while an API serves the
   * data directory (see {@link CreateCoreOptions.serving}).
   * @throws DataDirectoryInUseError naming the serving processes (nothing changed)
   * @throws Error when the rotation failed (nothing changed) or the new key is malformed
   */
  rotateEncryptionKey(newKey?: string): RotateResult;
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
  // The claim comes first: a rotation or restore cannot slip in between reading the key and serving with it.
  const claim: DataDirectoryClaim | undefined = options.serving
    ? claimServing(config.dataDir, typeof options.serving === 'object' ? options.serving.waitMs : undefined)
    : undefined;
  let opened: ReturnType<typeof openDataDirectory>;
  try {
    opened = openDataDirectory(config.dataDir, config.encryptionKey);
  } catch (error) {
    claim?.release();
    throw error;
  }
  const { db, box } = opened;

  const container = rootContainer.createChildContainer();
  const clock: Clock = { now: () => new Date() };
  container.register(TOKENS.Config, { useValue: config });
  container.register(TOKENS.Clock, { useValue: clock });
  container.register(TOKENS.Logger, { useValue: logger });
  container.register(TOKENS.AccountStore, { useValue: new SqliteAccountStore(db, box) });
  container.register(TOKENS.ApiTokenStore, { useValue: new SqliteApiTokenStore(db) });
  container.register(TOKENS.IdempotencyStore, { useValue: new SqliteIdempotencyStore(db) });
  container.register(TOKENS.HttpTransport, { useValue: new UndiciTransport(config) });
  container.register(TOKENS.Connector, { useClass: PipelinerConnector });
  container.registerSingleton(ConnectorRegistry);
  container.registerSingleton(IntegratedAccountService);
  container.registerSingleton(ApiTokenService);
  container.registerSingleton(IdempotencyGuard);
  container.registerSingleton(AccountBulkhead);
  container.registerSingleton(CreateStageUseCase);
  container.registerSingleton(StageMetaUseCase);
  options.register?.(container);

  const createStage = container.resolve(CreateStageUseCase);
  const stageMeta = container.resolve(StageMetaUseCase);
  let closed = false;
  return {
    config,
    logger,
    accounts: container.resolve(IntegratedAccountService),
    tokens: container.resolve(ApiTokenService),
    createStage: (request) => createStage.execute(request),
    stageCreateMeta: (environmentId, query, requestId) => stageMeta.execute(environmentId, query, requestId),
    openApiDocument: () => buildOpenApiDocument(UNICRM_VERSION),
    rotateEncryptionKey(newKey?: string) {
      let key: Buffer | undefined;
      if (newKey !== undefined) {
        key = /^[0-9a-f]{64}$/i.test(newKey.trim()) ? Buffer.from(newKey.trim(), 'hex') : Buffer.from(newKey.trim(), 'base64');
        if (key.length !== 32) throw new Error('The new key must be 32 bytes, as 64 hex characters or base64 (openssl rand -base64 32).');
      } else if (config.encryptionKey) {
        throw new Error('The key comes from UNICRM_ENCRYPTION_KEY: give the new key (--new-key), then set the variable to it.');
      }
      return rotateEncryptionKey(config.dataDir, db, box, { newKey: key });
    },
    async close() {
      if (closed) return;
      closed = true;
      await container.resolve<HttpTransport>(TOKENS.HttpTransport).close();
      db.close();
      claim?.release();
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    },
  };
}
