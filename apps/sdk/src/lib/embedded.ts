import { createUnicrmCore, DEFAULT_ENVIRONMENT, type UnicrmCore } from '@unicrm/core';
import { UnicrmError } from '@unicrm/model';
import { PREFERENCE_APPLIED_HEADER } from './meta';
import { encodeQuery } from './query';
import type { Unicrm } from './types';
import { proxyMethod, type Transport, unifiedResource } from './unified';

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
 * A provider body the core kept as text (the raw format, a proxy answer): parsed, `null` when empty, as the remote
 * client reads the same bytes.
 * @throws UnicrmError 502 for a body that is not JSON
 */
function bodyOfText(text: string | undefined, what: string): unknown {
  if (text === undefined || text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new UnicrmError(502, `The provider answered ${what} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
}

/** The header record of a core answer with lower-case names. */
function lowerCaseHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) out[name.toLowerCase()] = value;
  return out;
}

/**
 * The embedded {@link Transport}: each call handed to the core's use case of its method (`core.unified.*`,
 * `core.unified.batch` with `representation: 'minimal'` for `Prefer: return=minimal`, `core.proxy`), the query encoded with qs as the remote client encodes it (so both are parsed by the same code),
 * the body as its JSON ({@link asJson}). A key is sent only when the caller gave one: in process there are no
 * retries to protect.
 */
function coreTransport(core: UnicrmCore, environmentId: string): Transport {
  return async (call) => {
    const key = typeof call.idempotencyKey === 'string' ? call.idempotencyKey : undefined;
    const common = {
      environmentId,
      resource: call.resource,
      ...(call.kind !== 'batch' && call.id !== undefined && { id: call.id }),
      query: encodeQuery(call.query),
      ...(call.body !== undefined && { body: asJson(call.body) }),
      ...(key !== undefined && { idempotencyKey: key }),
    };
    if (call.kind === 'batch') {
      const answer = await core.unified.batch({ ...common, model: call.model, representation: call.minimal === true ? 'minimal' : 'representation' });
      return {
        statusCode: answer.statusCode,
        body: answer.body,
        // As the API answers a batch with Prefer: return=minimal.
        headers: { ...lowerCaseHeaders(answer.headers), ...(call.minimal === true && { [PREFERENCE_APPLIED_HEADER]: 'return=minimal' }) },
        attempts: 1,
        ...(key !== undefined && { idempotencyKey: key }),
      };
    }
    const answer =
      call.kind === 'unified'
        ? await core.unified[call.method]({ ...common, model: call.model })
        : await core.proxy({ ...common, method: call.method, headers: {} });
    const what = call.kind === 'unified' ? `${call.method} ${call.model}/${call.resource}` : `${call.method} /proxy/${call.resource}`;
    return {
      statusCode: answer.statusCode,
      // The provider's exact text when the core kept it (raw format, proxy): what the API sends and the remote client
      // parses. A replayed proxy answer has only that (its body is null).
      body: answer.rawText !== undefined ? bodyOfText(answer.rawText, what) : answer.body,
      headers: lowerCaseHeaders(answer.headers),
      attempts: 1,
      ...(key !== undefined && { idempotencyKey: key }),
    };
  };
}

/**
 * Creates the embedded client: the same core as the HTTP API, in your process, no server (DESIGN.md §1).
 * The query object is encoded with qs like the remote client and Truto's SDK do, and parsed by the same code as
 * the API's query string, so both front doors answer alike; an idempotency key goes through the same guard as the
 * API's `Idempotency-Key` header. There are no rate limits in process (the API's are per HTTP token). Accounts live in SQLite in `dataDir`, shared with an
 * API that uses the same directory (and encryption key). The `crm.*` methods are one generic implementation
 * ({@link unifiedResource}) over the core's use cases.
 * @throws Error when the configuration is invalid or the data directory's encryption key does not match
 */
export function createUnicrm(options: CreateUnicrmOptions = {}): Unicrm {
  const core = openCore(options);
  const env = DEFAULT_ENVIRONMENT;
  const send = coreTransport(core, env);
  const stages = unifiedResource(send, 'crm', 'stages');
  const pipelines = unifiedResource(send, 'crm', 'pipelines');
  return {
    crm: {
      stages: stages as Unicrm['crm']['stages'],
      pipelines: { list: pipelines.list, get: pipelines.get } as Unicrm['crm']['pipelines'],
    },
    proxy: proxyMethod(send) as Unicrm['proxy'],
    accounts: {
      create: async (body) => core.accounts.create(env, asJson(body)),
      // Encoded like the remote client's query string, so that both are validated alike.
      list: async (query = {}) => core.accounts.list(env, encodeQuery(query)),
      get: async (id) => core.accounts.get(env, id),
      update: async (id, body) => core.accounts.update(env, id, asJson(body)),
      delete: async (id) => core.accounts.delete(env, id),
    },
    linkTokens: {
      create: async (body) =>
        core.connect.createLinkToken(env, asJson(body), core.config.publicUrl ?? `http://127.0.0.1:${process.env.PORT || '8000'}`),
    },
    webhooks: {
      create: async (body) => core.webhooks.create(env, asJson(body)),
      list: async (query = {}) => core.webhooks.list(env, encodeQuery(query)),
      get: async (id) => core.webhooks.get(env, id),
      update: async (id, body) => core.webhooks.update(env, id, asJson(body)),
      delete: async (id) => core.webhooks.delete(env, id),
      test: async (id) => core.webhooks.test(env, { id }),
      deliveries: async (id, query = {}) => core.webhooks.deliveries(env, id, encodeQuery(query)),
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
