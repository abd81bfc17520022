import { createUnicrmCore, DEFAULT_ENVIRONMENT, type UnicrmCore } from '@unicrm/core';
import type { IntegratedAccount, IntegratedAccountCreateBody, ResponseFormat, Stage, StageCreateBody } from '@unicrm/model';
import qs from 'qs';

/** Query options of `crm.stages.create`, as for Truto's SDK (create-stages.txt "Query parameters"). */
export interface StageCreateQuery {
  integrated_account_id: string;
  truto_response_format?: ResponseFormat;
  truto_ignore_remote_data?: boolean;
  truto_exclude_fields?: string[];
  remote_query?: Record<string, unknown>;
}

/** Options of {@link createUnicrm}. */
export interface CreateUnicrmOptions {
  /** Where accounts live (default `UNICRM_DATA_DIR` or `./.unicrm`): the same directory the API uses shares its accounts. */
  dataDir?: string;
  /** 32-byte key (hex or base64); default `UNICRM_ENCRYPTION_KEY` or the key file in `dataDir`. */
  encryptionKey?: string;
  /** pino log level, logs on stderr (default `UNICRM_LOG_LEVEL` or `silent`). */
  logLevel?: string;
  /** Provider call timeout in ms (default 30 000). */
  remoteTimeoutMs?: number;
}

/** The in-process client: the same core as the HTTP API, without a server (DESIGN.md §1). */
export interface Unicrm {
  crm: {
    stages: {
      /**
       * Creates a stage, exactly as `POST /unified/crm/stages` would: the same body for the same query.
       * @returns the stage (`unified`/`normalized`) or the provider's body (`raw`)
       * @throws UnicrmError carrying the error body the API would send
       */
      create(query: StageCreateQuery, body: StageCreateBody): Promise<Stage | Record<string, unknown>>;
    };
  };
  accounts: {
    create(body: IntegratedAccountCreateBody): Promise<IntegratedAccount>;
    get(id: string): Promise<IntegratedAccount>;
    update(id: string, body: { tenant_id?: string; context?: Record<string, unknown> }): Promise<IntegratedAccount>;
    delete(id: string): Promise<{ id: string }>;
  };
  /** Closes connection pools and the database. */
  close(): Promise<void>;
}

/**
 * Creates the embedded client. The query object is encoded with qs, as Truto's SDK does, and parsed
 * by the same code as the API's query string, so both front doors behave alike.
 * @throws Error when the data directory's encryption key does not match
 */
export function createUnicrm(options: CreateUnicrmOptions = {}): Unicrm {
  const core: UnicrmCore = createUnicrmCore({
    logDestination: 'stderr',
    defaultLogLevel: 'silent',
    config: {
      ...(options.dataDir !== undefined && { dataDir: options.dataDir }),
      ...(options.encryptionKey !== undefined && { encryptionKey: options.encryptionKey }),
      ...(options.logLevel !== undefined && { logLevel: options.logLevel }),
      ...(options.remoteTimeoutMs !== undefined && { remoteTimeoutMs: options.remoteTimeoutMs }),
    },
  });
  const env = DEFAULT_ENVIRONMENT;
  return {
    crm: {
      stages: {
        async create(query, body) {
          const answer = await core.createStage({ environmentId: env, query: qs.stringify(query), body });
          return answer.body as Stage | Record<string, unknown>;
        },
      },
    },
    accounts: {
      create: async (body) => core.accounts.create(env, body),
      get: async (id) => core.accounts.get(env, id),
      update: async (id, body) => core.accounts.update(env, id, body),
      delete: async (id) => core.accounts.delete(env, id),
    },
    close: () => core.close(),
  };
}
