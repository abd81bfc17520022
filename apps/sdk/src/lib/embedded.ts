import { createUnicrmCore, DEFAULT_ENVIRONMENT, type UnicrmCore } from '@unicrm/core';
import { UnicrmError } from '@unicrm/model';
import { attachResponseMeta, REPLAYED_HEADER } from './meta';
import { encodeQuery } from './query';
import type { StageCreateResult, Unicrm } from './types';

/** Options of {@link createUnicrm}. */
export interface CreateUnicrmOptions {
  /** Where accounts live (default `UNICRM_DATA_DIR` or `./.unicrm`): the same directory the API uses shares its accounts. */
  dataDir?: string;
  /** 32-byte key (hex or base64); default `UNICRM_ENCRYPTION_KEY` or the key file in `dataDir`. */
  encryptionKey?: string;
  /** pino log level, logs on stderr (default `UNICRM_LOG_LEVEL` or `silent`). */
  logLevel?: string;
  /** Provider answer timeout in milliseconds (default `UNICRM_REMOTE_TIMEOUT_MS` or 30 000); then a 504. */
  remoteTimeoutMs?: number;
}

/**
 * A body as the remote client sends it: its JSON text, parsed again (getters read once, `toJSON` applied,
 * `undefined` members dropped). The embedded and remote SDK then validate and send the same thing, and the core
 * works on a copy the caller cannot change during the call.
 * @throws UnicrmError 400 when the body cannot be written as JSON (a cycle, a BigInt)
 */
function asJson(body: unknown): unknown {
  if (body === undefined) return undefined;
  let text: string | undefined;
  try {
    text = JSON.stringify(body);
  } catch (error) {
    throw UnicrmError.badRequest(`The body cannot be written as JSON: ${(error as Error).message}`);
  }
  return text === undefined ? undefined : JSON.parse(text);
}

/**
 * Creates the embedded client: the same core as the HTTP API, in your process, no server (DESIGN.md §1).
 * The query object is encoded with qs like the remote client and Truto's SDK do, and parsed by the same code as
 * the API's query string, so both front doors answer alike; an idempotency key goes through the same guard as the
 * API's `Idempotency-Key` header. There are no rate limits in process (the API's are per HTTP token). Accounts live in SQLite in `dataDir`, shared with an
 * API that uses the same directory (and encryption key).
 * @throws Error when the configuration is invalid or the data directory's encryption key does not match
 */
export function createUnicrm(options: CreateUnicrmOptions = {}): Unicrm {
  const core = openCore(options);
  const env = DEFAULT_ENVIRONMENT;
  return {
    crm: {
      stages: {
        async create(query, body, options) {
          const key = typeof options?.idempotencyKey === 'string' ? options.idempotencyKey : undefined;
          const answer = await core.unified.create({
            environmentId: env,
            model: 'crm',
            resource: 'stages',
            query: encodeQuery(query),
            body: asJson(body),
            ...(key !== undefined && { idempotencyKey: key }),
          });
          const replayed = Object.entries(answer.headers ?? {}).some(([name, value]) => name.toLowerCase() === REPLAYED_HEADER && value === 'true');
          return attachResponseMeta(answer.body as StageCreateResult<(typeof query)['truto_response_format']>, {
            statusCode: answer.statusCode,
            replayed,
            ...(key !== undefined && { idempotencyKey: key }),
            attempts: 1,
          });
        },
      },
    },
    accounts: {
      create: async (body) => core.accounts.create(env, asJson(body)),
      // Encoded like the remote client's query string, so that both are validated alike.
      list: async (query = {}) => core.accounts.list(env, encodeQuery(query)),
      get: async (id) => core.accounts.get(env, id),
      update: async (id, body) => core.accounts.update(env, id, asJson(body)),
      delete: async (id) => core.accounts.delete(env, id),
    },
    close: () => core.close(),
  };
}

// The CLI's `backup` and `restore` (loaded with this module, on first use, like the embedded core).
export { backupDataDirectory, DataDirectoryInUseError, DataFileError, restoreDataDirectory, RestoreKeyError } from '@unicrm/core';

/**
 * The core on a data directory, with the SDK's settings (logs on stderr, silent by default). For the CLI's commands
 * that work on the data directory itself (`tokens`, `keys`); not part of the SDK's public API.
 * @throws Error when the configuration is invalid or the encryption key does not match
 */
export function openCore(options: CreateUnicrmOptions = {}): UnicrmCore {
  return createUnicrmCore({
    logDestination: 'stderr',
    defaultLogLevel: 'silent',
    config: {
      ...(options.dataDir !== undefined && { dataDir: options.dataDir }),
      ...(options.encryptionKey !== undefined && { encryptionKey: options.encryptionKey }),
      ...(options.logLevel !== undefined && { logLevel: options.logLevel }),
      ...(options.remoteTimeoutMs !== undefined && { remoteTimeoutMs: options.remoteTimeoutMs }),
    },
  });
}
