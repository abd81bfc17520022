import { backupDatabase, type DatabaseCopyResult, describeKeyLocation, findEncryptionKey, restoreDatabase, type RestoreResult } from '@unicrm/store';
import { configFromEnv } from './config';

export {
  claimExclusive,
  DataDirectoryInUseError,
  DataFileError,
  RestoreKeyError,
  servingProcesses,
  type DataDirectoryClaim,
  type DatabaseCopyResult,
  type RestoreResult,
  type ServingProcess,
} from '@unicrm/store';

/** Which data directory a backup or restore works on: the options, else `UNICRM_DATA_DIR` / `UNICRM_ENCRYPTION_KEY` of `env`. */
export interface DataDirectoryOptions {
  /** Environment variables to read (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** The data directory (default `UNICRM_DATA_DIR` or `./.unicrm`). */
  dataDir?: string;
  /** The key, hex or base64 (default `UNICRM_ENCRYPTION_KEY`, else the data directory's key file). */
  encryptionKey?: string;
}

/** Where the key of the data directory is, for the messages of `unicrm backup` and `restore`. */
export interface KeyLocation {
  /** The data directory, absolute. */
  dataDir: string;
  /** `UNICRM_ENCRYPTION_KEY`, or the key file's path. */
  keyLocation: string;
  /** False when neither the variable is set nor the key file exists: nothing can read the credentials. */
  keyFound: boolean;
}

function resolveOptions(options: DataDirectoryOptions): { dataDir: string; encryptionKey?: string } {
  const env = options.env ?? process.env;
  const dataDir = options.dataDir !== undefined ? configFromEnv({ UNICRM_DATA_DIR: options.dataDir }).dataDir : configFromEnv(env).dataDir;
  const encryptionKey = options.encryptionKey ?? (env.UNICRM_ENCRYPTION_KEY || undefined);
  return { dataDir, encryptionKey };
}

function keyLocationOf(dataDir: string, encryptionKey?: string): KeyLocation {
  let keyFound: boolean;
  try {
    keyFound = findEncryptionKey(dataDir, encryptionKey) !== undefined;
  } catch {
    keyFound = false;
  }
  return { dataDir, keyLocation: describeKeyLocation(dataDir, encryptionKey), keyFound };
}

/**
 * `unicrm backup <file>`: a consistent copy of the data directory's database, with SQLite's online backup API, while
 * an API serves it or not (see `backupDatabase` in `@unicrm/store`: the accounts still in the `-wal` file included).
 * The key is not in the backup: the answer says where it is.
 * @throws DataFileError (no database, target exists without `overwrite`, no such folder)
 */
export async function backupDataDirectory(
  file: string,
  options: DataDirectoryOptions & { overwrite?: boolean } = {},
): Promise<DatabaseCopyResult & KeyLocation> {
  const { dataDir, encryptionKey } = resolveOptions(options);
  const result = await backupDatabase(dataDir, file, { overwrite: options.overwrite });
  return { ...result, ...keyLocationOf(dataDir, encryptionKey) };
}

/**
 * `unicrm restore <file>`: replaces the data directory's database with a backup (see `restoreDatabase` in
 * `@unicrm/store`), refusing while an API serves the directory or another process has it open, when the file is not
 * a unicrm database, and when the directory's key does not open it.
 * @throws DataFileError, DataDirectoryInUseError, RestoreKeyError (nothing changed)
 */
export async function restoreDataDirectory(file: string, options: DataDirectoryOptions = {}): Promise<RestoreResult & KeyLocation> {
  const { dataDir, encryptionKey } = resolveOptions(options);
  const result = await restoreDatabase(dataDir, file, encryptionKey);
  return { ...result, ...keyLocationOf(dataDir, encryptionKey) };
}
