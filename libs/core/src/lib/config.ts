import type { UnicrmConfig } from '@unicrm/model';
import { resolve } from 'node:path';

/** Settings read from the environment, beyond {@link UnicrmConfig}. */
export interface CoreEnvironment {
  /** `UNICRM_ENCRYPTION_KEY`: 32-byte key, hex or base64; else a key file in the data directory. */
  encryptionKey?: string;
  /**
   * `UNICRM_DATABASE_URL`: `postgres://…` puts accounts, tokens and idempotency records in PostgreSQL, shared by
   * several nodes (docs/deployment.md); unset, the SQLite database in the data directory.
   */
  databaseUrl?: string;
  /** `UNICRM_DATABASE_POOL_SIZE`: most PostgreSQL connections per node (default 10). */
  databasePoolSize: number;
  /** `UNICRM_API_TOKEN`: an API token accepted as is (for scripted set-ups); else one is generated on first start. */
  apiToken?: string;
  /** `UNICRM_LOG_LEVEL`: pino level (default `info` for the API). */
  logLevel?: string;
  /** Rate limits of the HTTP API (truto-contract.md §3.4). */
  rateLimits: RateLimits;
  /** `UNICRM_IDEMPOTENCY_TTL_MS`: how long an idempotent answer is replayed (default 24 h). */
  idempotencyTtlMs: number;
  /**
   * `UNICRM_IDEMPOTENCY_LEASE_MS`: lease of an in-flight `Idempotency-Key` (default 30 000). The request holding the
   * key renews it every third of it while it runs; a key whose lease ended was abandoned by a dead process.
   */
  idempotencyLeaseMs: number;
  /**
   * `UNICRM_OPERATION_TIMEOUT_MS`: deadline of one unified operation, every provider call it makes included
   * (a create: the POST and the pipeline-name read; an idempotent retry: the lookup too), from the moment the core
   * takes it (default 60 000: two calls at the full remote timeout). Past it: 504.
   */
  operationTimeoutMs: number;
  /** Per integrated account: how many unified operations may be in flight, and how many may wait for a slot. */
  bulkhead: BulkheadLimits;
  /**
   * `UNICRM_BATCH_CONCURRENCY`: how many items of one batch request are written at once through single provider calls
   * (default 4; their pace is the provider's rate limit, see docs/contract.md "Pacing"). Keep it under
   * `UNICRM_MAX_IN_FLIGHT_PER_ACCOUNT`, so a batch leaves the account's ordinary calls room.
   */
  batchConcurrency: number;
  /** `UNICRM_LINK_TOKEN_TTL_MS`: how long a link token can be used (default 900 000: 15 minutes). */
  linkTokenTtlMs: number;
  /**
   * `UNICRM_PUBLIC_URL`: the address end customers' browsers reach this API at (`https://crm-api.example.com`), for the
   * `url` of a link token; unset, the `Host` the `POST /link-token` request was sent to (http).
   */
  publicUrl?: string;
  /**
   * `UNICRM_CONNECT_REDIRECT_URIS`: the `redirect_uri`s a link token may name, per environment: entries
   * `<environment>=<uri>` separated by commas or spaces. A link token's `redirect_uri` must equal one of its
   * environment's (no prefix match); none listed: no `redirect_uri` is accepted.
   */
  connectRedirectUris: Record<string, string[]>;
  /** Delivery of webhooks (docs/connect.md "Webhooks"). */
  webhooks: WebhookSettings;
  /**
   * OAuth apps by integration, for the connect page's consent flow (docs/connect.md "OAuth"):
   * `UNICRM_OAUTH_<INTEGRATION>_CLIENT_ID` and `_CLIENT_SECRET`, optionally `_AUTHORIZE_URL` and `_TOKEN_URL` (a
   * sandbox's; default the connector's) and `_SCOPES` (space- or comma-separated; default the connector's).
   */
  oauthApps: Record<string, { clientId: string; clientSecret: string; authorizeUrl?: string; tokenUrl?: string; scopes?: string[] }>;
}

/**
 * Reads the OAuth apps of `UNICRM_OAUTH_<INTEGRATION>_CLIENT_ID|CLIENT_SECRET|AUTHORIZE_URL|TOKEN_URL|SCOPES`.
 * @throws Error naming the variable when a client id has no secret
 */
export function parseOAuthApps(env: NodeJS.ProcessEnv): CoreEnvironment['oauthApps'] {
  const apps: CoreEnvironment['oauthApps'] = {};
  for (const [name, value] of Object.entries(env)) {
    const match = /^UNICRM_OAUTH_([A-Z0-9_]+)_CLIENT_ID$/.exec(name);
    if (!match || !value) continue;
    const prefix = `UNICRM_OAUTH_${match[1]}_`;
    const secret = env[`${prefix}CLIENT_SECRET`];
    if (!secret) throw new Error(`${prefix}CLIENT_ID is set but ${prefix}CLIENT_SECRET is not.`);
    apps[(match[1] as string).toLowerCase()] = {
      clientId: value,
      clientSecret: secret,
      ...(env[`${prefix}AUTHORIZE_URL`] && { authorizeUrl: env[`${prefix}AUTHORIZE_URL`] }),
      ...(env[`${prefix}TOKEN_URL`] && { tokenUrl: env[`${prefix}TOKEN_URL`] }),
      ...(env[`${prefix}SCOPES`] && { scopes: (env[`${prefix}SCOPES`] as string).split(/[\s,]+/).filter(Boolean) }),
    };
  }
  return apps;
}

/** How the webhook worker delivers. Durations in ms. */
export interface WebhookSettings {
  /** `UNICRM_WEBHOOK_POLL_MS` (default 1 000): how often a worker looks for due deliveries. */
  pollMs: number;
  /** `UNICRM_WEBHOOK_TIMEOUT_MS` (default 10 000): deadline of one POST to a receiver. */
  timeoutMs: number;
  /** `UNICRM_WEBHOOK_RETRY_BASE_MS` (default 10 000): the first retry's delay; each next one doubles it. */
  retryBaseMs: number;
  /** `UNICRM_WEBHOOK_RETRY_MAX_MS` (default 3 600 000): the longest delay between two attempts. */
  retryMaxMs: number;
  /** `UNICRM_WEBHOOK_MAX_AGE_MS` (default 259 200 000: 3 days): past this age an undelivered event is given up (`failed`). */
  maxAgeMs: number;
  /**
   * `UNICRM_WEBHOOK_RETENTION_MS` (default 2 592 000 000: 30 days): how long delivered and given-up events stay in the
   * delivery log (`GET /webhook/:id/deliveries`); older ones are deleted by the workers, about once an hour.
   */
  retentionMs: number;
}

/**
 * Parses `UNICRM_CONNECT_REDIRECT_URIS` (`<environment>=<uri>` entries, comma or space separated).
 * @throws Error naming the variable for an entry without `=` or a URI that is not absolute
 */
export function parseRedirectUris(text: string | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const entry of (text ?? '').split(/[\s,]+/).filter((e) => e !== '')) {
    const at = entry.indexOf('=');
    const environment = entry.slice(0, at);
    const uri = entry.slice(at + 1);
    if (at <= 0 || !URL.canParse(uri)) throw new Error(`UNICRM_CONNECT_REDIRECT_URIS: "${entry}" is not <environment>=<absolute URI>.`);
    (out[environment] ??= []).push(uri);
  }
  return out;
}

/** The per-account bulkhead (docs/reliability.md "One account cannot starve the others"). */
export interface BulkheadLimits {
  /** `UNICRM_MAX_IN_FLIGHT_PER_ACCOUNT` (default 16; 0 = no limit): operations running towards the provider at once. */
  maxInFlight: number;
  /** `UNICRM_MAX_QUEUED_PER_ACCOUNT` (default 64): operations waiting for a slot; past them: 429. */
  maxQueued: number;
}

/** Requests allowed per window; 0 turns a limit off. */
export interface RateLimits {
  /** `UNICRM_RATE_LIMIT_PER_TOKEN` (default 500, as Truto). */
  perToken: number;
  /** `UNICRM_RATE_LIMIT_PER_ACCOUNT`, keyed on `integrated_account_id` (default 50, as Truto). */
  perAccount: number;
  /** `UNICRM_RATE_LIMIT_WINDOW_MS` (default 10 000). */
  windowMs: number;
}

function wholeNumber(name: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be a whole number >= ${min}, not "${text}".`);
  return value;
}

/** `UNICRM_DATABASE_URL`: a `postgres://` or `postgresql://` URL, or unset. @throws Error for anything else */
function databaseUrl(text: string | undefined): string | undefined {
  if (text === undefined || text === '') return undefined;
  if (!/^postgres(ql)?:\/\//i.test(text)) throw new Error('UNICRM_DATABASE_URL must be a postgres:// URL (unset it to use SQLite in the data directory).');
  return text;
}

/**
 * Reads unicrm's configuration from environment variables (DESIGN.md §3, §4, §5):
 * `UNICRM_DATA_DIR` (default `./.unicrm`, resolved against the working directory),
 * `UNICRM_REMOTE_TIMEOUT_MS` (30000), `UNICRM_CONNECT_TIMEOUT_MS` (10000),
 * `UNICRM_ENCRYPTION_KEY`, `UNICRM_API_TOKEN`, `UNICRM_LOG_LEVEL`, `UNICRM_RATE_LIMIT_PER_TOKEN` (500),
 * `UNICRM_RATE_LIMIT_PER_ACCOUNT` (50), `UNICRM_RATE_LIMIT_WINDOW_MS` (10000), `UNICRM_IDEMPOTENCY_TTL_MS` (86400000),
 * `UNICRM_IDEMPOTENCY_LEASE_MS` (30000), `UNICRM_OPERATION_TIMEOUT_MS` (60000), `UNICRM_MAX_IN_FLIGHT_PER_ACCOUNT` (16),
 * `UNICRM_MAX_QUEUED_PER_ACCOUNT` (64), `UNICRM_DATABASE_URL`, `UNICRM_DATABASE_POOL_SIZE` (10), `UNICRM_LINK_TOKEN_TTL_MS`
 * (900000), `UNICRM_PUBLIC_URL`, `UNICRM_CONNECT_REDIRECT_URIS`, `UNICRM_WEBHOOK_POLL_MS` (1000), `UNICRM_WEBHOOK_TIMEOUT_MS`
 * (10000), `UNICRM_WEBHOOK_RETRY_BASE_MS` (10000), `UNICRM_WEBHOOK_RETRY_MAX_MS` (3600000), `UNICRM_WEBHOOK_MAX_AGE_MS` (259200000),
 * `UNICRM_WEBHOOK_RETENTION_MS` (2592000000).
 * @throws Error naming the variable when a number is malformed
 */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): UnicrmConfig & CoreEnvironment {
  return {
    dataDir: resolve(env.UNICRM_DATA_DIR || '.unicrm'),
    remoteTimeoutMs: wholeNumber('UNICRM_REMOTE_TIMEOUT_MS', env.UNICRM_REMOTE_TIMEOUT_MS, 30_000, 1),
    connectTimeoutMs: wholeNumber('UNICRM_CONNECT_TIMEOUT_MS', env.UNICRM_CONNECT_TIMEOUT_MS, 10_000, 1),
    idempotencyTtlMs: wholeNumber('UNICRM_IDEMPOTENCY_TTL_MS', env.UNICRM_IDEMPOTENCY_TTL_MS, 86_400_000, 1),
    idempotencyLeaseMs: wholeNumber('UNICRM_IDEMPOTENCY_LEASE_MS', env.UNICRM_IDEMPOTENCY_LEASE_MS, 30_000, 30),
    operationTimeoutMs: wholeNumber('UNICRM_OPERATION_TIMEOUT_MS', env.UNICRM_OPERATION_TIMEOUT_MS, 60_000, 1),
    batchConcurrency: wholeNumber('UNICRM_BATCH_CONCURRENCY', env.UNICRM_BATCH_CONCURRENCY, 4, 1),
    bulkhead: {
      maxInFlight: wholeNumber('UNICRM_MAX_IN_FLIGHT_PER_ACCOUNT', env.UNICRM_MAX_IN_FLIGHT_PER_ACCOUNT, 16, 0),
      maxQueued: wholeNumber('UNICRM_MAX_QUEUED_PER_ACCOUNT', env.UNICRM_MAX_QUEUED_PER_ACCOUNT, 64, 0),
    },
    rateLimits: {
      perToken: wholeNumber('UNICRM_RATE_LIMIT_PER_TOKEN', env.UNICRM_RATE_LIMIT_PER_TOKEN, 500, 0),
      perAccount: wholeNumber('UNICRM_RATE_LIMIT_PER_ACCOUNT', env.UNICRM_RATE_LIMIT_PER_ACCOUNT, 50, 0),
      windowMs: wholeNumber('UNICRM_RATE_LIMIT_WINDOW_MS', env.UNICRM_RATE_LIMIT_WINDOW_MS, 10_000, 1),
    },
    encryptionKey: env.UNICRM_ENCRYPTION_KEY || undefined,
    databaseUrl: databaseUrl(env.UNICRM_DATABASE_URL),
    databasePoolSize: wholeNumber('UNICRM_DATABASE_POOL_SIZE', env.UNICRM_DATABASE_POOL_SIZE, 10, 1),
    apiToken: env.UNICRM_API_TOKEN || undefined,
    logLevel: env.UNICRM_LOG_LEVEL || undefined,
    linkTokenTtlMs: wholeNumber('UNICRM_LINK_TOKEN_TTL_MS', env.UNICRM_LINK_TOKEN_TTL_MS, 900_000, 1_000),
    publicUrl: env.UNICRM_PUBLIC_URL ? env.UNICRM_PUBLIC_URL.replace(/\/+$/, '') : undefined,
    connectRedirectUris: parseRedirectUris(env.UNICRM_CONNECT_REDIRECT_URIS),
    oauthApps: parseOAuthApps(env),
    webhooks: {
      pollMs: wholeNumber('UNICRM_WEBHOOK_POLL_MS', env.UNICRM_WEBHOOK_POLL_MS, 1_000, 10),
      timeoutMs: wholeNumber('UNICRM_WEBHOOK_TIMEOUT_MS', env.UNICRM_WEBHOOK_TIMEOUT_MS, 10_000, 1),
      retryBaseMs: wholeNumber('UNICRM_WEBHOOK_RETRY_BASE_MS', env.UNICRM_WEBHOOK_RETRY_BASE_MS, 10_000, 1),
      retryMaxMs: wholeNumber('UNICRM_WEBHOOK_RETRY_MAX_MS', env.UNICRM_WEBHOOK_RETRY_MAX_MS, 3_600_000, 1),
      maxAgeMs: wholeNumber('UNICRM_WEBHOOK_MAX_AGE_MS', env.UNICRM_WEBHOOK_MAX_AGE_MS, 259_200_000, 1),
      retentionMs: wholeNumber('UNICRM_WEBHOOK_RETENTION_MS', env.UNICRM_WEBHOOK_RETENTION_MS, 2_592_000_000, 1),
    },
  };
}

/**
 * A database URL without its password (in the user part, or a libpq `password` parameter), for what is printed or
 * logged: `postgres://u:***@host/db`.
 */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    for (const key of [...parsed.searchParams.keys()]) if (key.toLowerCase() === 'password') parsed.searchParams.set(key, '***');
    return parsed.toString();
  } catch {
    return 'postgres://…';
  }
}
