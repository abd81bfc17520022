import type { UnicrmConfig } from '@unicrm/model';
import { resolve } from 'node:path';

/** Settings read from the environment, beyond {@link UnicrmConfig}. */
export interface CoreEnvironment {
  /** `UNICRM_ENCRYPTION_KEY`: 32-byte key, hex or base64; else a key file in the data directory. */
  encryptionKey?: string;
  /** `UNICRM_API_TOKEN`: an API token accepted as is (for scripted set-ups); else one is generated on first start. */
  apiToken?: string;
  /** `UNICRM_LOG_LEVEL`: pino level (default `info` for the API). */
  logLevel?: string;
  /** Rate limits of the HTTP API (truto-contract.md §3.4). */
  rateLimits: RateLimits;
  /** `UNICRM_IDEMPOTENCY_TTL_MS`: how long an idempotent answer is replayed (default 24 h). */
  idempotencyTtlMs: number;
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

/**
 * Reads unicrm's configuration from environment variables (DESIGN.md §3, §4, §5):
 * `UNICRM_DATA_DIR` (default `./.unicrm`, resolved against the working directory),
 * `UNICRM_REMOTE_TIMEOUT_MS` (30000), `UNICRM_CONNECT_TIMEOUT_MS` (10000),
 * `UNICRM_ENCRYPTION_KEY`, `UNICRM_API_TOKEN`, `UNICRM_LOG_LEVEL`, `UNICRM_RATE_LIMIT_PER_TOKEN` (500),
 * `UNICRM_RATE_LIMIT_PER_ACCOUNT` (50), `UNICRM_RATE_LIMIT_WINDOW_MS` (10000).
 * @throws Error naming the variable when a number is malformed
 */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): UnicrmConfig & CoreEnvironment {
  return {
    dataDir: resolve(env.UNICRM_DATA_DIR || '.unicrm'),
    remoteTimeoutMs: wholeNumber('UNICRM_REMOTE_TIMEOUT_MS', env.UNICRM_REMOTE_TIMEOUT_MS, 30_000, 1),
    connectTimeoutMs: wholeNumber('UNICRM_CONNECT_TIMEOUT_MS', env.UNICRM_CONNECT_TIMEOUT_MS, 10_000, 1),
    idempotencyTtlMs: wholeNumber('UNICRM_IDEMPOTENCY_TTL_MS', env.UNICRM_IDEMPOTENCY_TTL_MS, 86_400_000, 1),
    rateLimits: {
      perToken: wholeNumber('UNICRM_RATE_LIMIT_PER_TOKEN', env.UNICRM_RATE_LIMIT_PER_TOKEN, 500, 0),
      perAccount: wholeNumber('UNICRM_RATE_LIMIT_PER_ACCOUNT', env.UNICRM_RATE_LIMIT_PER_ACCOUNT, 50, 0),
      windowMs: wholeNumber('UNICRM_RATE_LIMIT_WINDOW_MS', env.UNICRM_RATE_LIMIT_WINDOW_MS, 10_000, 1),
    },
    encryptionKey: env.UNICRM_ENCRYPTION_KEY || undefined,
    apiToken: env.UNICRM_API_TOKEN || undefined,
    logLevel: env.UNICRM_LOG_LEVEL || undefined,
  };
}
