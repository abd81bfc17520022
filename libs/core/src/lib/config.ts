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
}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive whole number of milliseconds, not "${text}".`);
  return value;
}

/**
 * Reads unicrm's configuration from environment variables (DESIGN.md §3, §4, §5):
 * `UNICRM_DATA_DIR` (default `./.unicrm`, resolved against the working directory),
 * `UNICRM_REMOTE_TIMEOUT_MS` (30000), `UNICRM_CONNECT_TIMEOUT_MS` (10000),
 * `UNICRM_ENCRYPTION_KEY`, `UNICRM_API_TOKEN`, `UNICRM_LOG_LEVEL`.
 * @throws Error naming the variable when a number is malformed
 */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): UnicrmConfig & CoreEnvironment {
  return {
    dataDir: resolve(env.UNICRM_DATA_DIR || '.unicrm'),
    remoteTimeoutMs: positiveInt('UNICRM_REMOTE_TIMEOUT_MS', env.UNICRM_REMOTE_TIMEOUT_MS, 30_000),
    connectTimeoutMs: positiveInt('UNICRM_CONNECT_TIMEOUT_MS', env.UNICRM_CONNECT_TIMEOUT_MS, 10_000),
    encryptionKey: env.UNICRM_ENCRYPTION_KEY || undefined,
    apiToken: env.UNICRM_API_TOKEN || undefined,
    logLevel: env.UNICRM_LOG_LEVEL || undefined,
  };
}
