import Database from 'better-sqlite3';
import { chmodSync, closeSync, copyFileSync, existsSync, fsyncSync, linkSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { DATABASE_FILE, KEY_CHECK, KEY_CHECK_ROW, SCHEMA_VERSION, UNICRM_TABLES } from './database';
import { findEncryptionKey, KEY_FILE, SecretBox } from './secret-box';
import { claimExclusive, DataDirectoryInUseError } from './serving-lock';

/**
 * A file given to backup or restore cannot be used: missing, not a SQLite database, not a unicrm database, written
 * by a newer unicrm, damaged, or a backup target that exists already. Nothing was changed. (The caller's input.)
 */
export class DataFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataFileError';
  }
}

/**
 * `restore` needs the key a backup was written with, and the data directory does not have it (no key, or another
 * one). Nothing was changed.
 */
export class RestoreKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreKeyError';
  }
}

/** What a backup or a restore wrote. */
export interface DatabaseCopyResult {
  /** The file written: the backup file, or the data directory's database. */
  file: string;
  /** Its size in bytes. */
  bytes: number;
  /** Integrated accounts in it. */
  accounts: number;
  /** API tokens in it (stored as hashes). */
  apiTokens: number;
  /** Its schema version (`PRAGMA user_version`). */
  schemaVersion: number;
}

/** What {@link restoreDatabase} did. */
export interface RestoreResult extends DatabaseCopyResult {
  /** Where the database it replaced was kept (`unicrm.sqlite.before-restore-<time>`), or null when there was none. */
  previous: string | null;
}

/**
 * Where the key of a data directory is, in words for messages: `UNICRM_ENCRYPTION_KEY` when `envValue` is set, else
 * the key file's path.
 */
export function describeKeyLocation(dataDir: string, envValue?: string): string {
  return envValue !== undefined && envValue !== '' ? 'UNICRM_ENCRYPTION_KEY' : join(resolve(dataDir), KEY_FILE);
}

/** Copies every remaining page in the step after the first: a read transaction in WAL mode does not block writers. */
const ALL_PAGES = () => 0x7fffffff;

function counts(db: Database.Database, file: string): DatabaseCopyResult {
  return {
    file,
    bytes: statSync(file).size,
    accounts: db.prepare('SELECT count(*) FROM integrated_accounts').pluck().get() as number,
    apiTokens: db.prepare('SELECT count(*) FROM api_tokens').pluck().get() as number,
    schemaVersion: db.pragma('user_version', { simple: true }) as number,
  };
}

/**
 * Opens `file` read-only and checks that it is a whole unicrm database this version can use.
 * @throws DataFileError saying what it is instead
 */
function openUnicrmDatabase(file: string): Database.Database {
  if (!existsSync(file)) throw new DataFileError(`${file} does not exist.`);
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (error) {
    throw new DataFileError(`${file} cannot be opened as a SQLite database: ${(error as Error).message}.`);
  }
  try {
    let tables: string[];
    try {
      tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
    } catch (error) {
      throw new DataFileError(`${file} is not a unicrm backup: ${(error as Error).message} (not a SQLite database).`);
    }
    const version = db.pragma('user_version', { simple: true }) as number;
    const missing = UNICRM_TABLES.filter((table) => !tables.includes(table));
    if (version < 1 || missing.length > 0) {
      throw new DataFileError(`${file} is not a unicrm backup: a SQLite database without unicrm's tables (${missing.join(', ') || 'no schema version'}).`);
    }
    if (version > SCHEMA_VERSION) {
      throw new DataFileError(`${file} was written by a newer unicrm (schema version ${version}; this one knows up to ${SCHEMA_VERSION}). Restore it with that version.`);
    }
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new DataFileError(`${file} is damaged (SQLite's quick_check: ${String(check)}).`);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/**
 * Writes a consistent copy of the data directory's database to `file` with SQLite's online backup API
 * (better-sqlite3's `db.backup`): what every committed transaction wrote, those still only in the `-wal` file
 * included, while an API or any other process goes on reading and writing. The copy is one self-contained file
 * (rollback journal, not WAL), mode 0600, checked with `quick_check`, written to `<file>.tmp-<pid>` and renamed
 * into place. It holds the credentials sealed with the data directory's key and not the key: without that key it
 * cannot be read (docs/security.md, "Backups").
 * @param file where to write the backup (its folder must exist)
 * @param options.overwrite replace `file` if it exists (default: refuse)
 * @throws DataFileError when there is no database in `dataDir`, `file` exists (without `overwrite`), its folder does
 *   not exist, or it is the database itself
 */
export async function backupDatabase(dataDir: string, file: string, options: { overwrite?: boolean } = {}): Promise<DatabaseCopyResult> {
  const database = join(resolve(dataDir), DATABASE_FILE);
  const target = resolve(file);
  if (!existsSync(database)) throw new DataFileError(`There is no unicrm database in ${resolve(dataDir)} (${database} does not exist).`);
  if (target === database) throw new DataFileError('The backup cannot be written over the database itself; name another file.');
  if (!existsSync(dirname(target))) throw new DataFileError(`The folder ${dirname(target)} does not exist.`);
  if (existsSync(target) && !options.overwrite) throw new DataFileError(`${target} exists already; name a new file (or --force to replace it).`);
  const temporary = `${target}.tmp-${process.pid}`;
  rmSync(temporary, { force: true });
  const source = new Database(database, { fileMustExist: true });
  try {
    source.pragma('busy_timeout = 5000');
    await source.backup(temporary, { progress: ALL_PAGES });
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  } finally {
    source.close();
  }
  try {
    chmodSync(temporary, 0o600);
    const copy = new Database(temporary, { fileMustExist: true });
    let result: DatabaseCopyResult;
    try {
      copy.pragma('journal_mode = DELETE');
      const check = copy.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new Error(`the copy failed SQLite's quick_check (${String(check)})`);
      result = counts(copy, temporary);
    } finally {
      copy.close();
    }
    renameSync(temporary, target);
    syncFolder(dirname(target));
    return { ...result, file: target };
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

/**
 * Replaces the data directory's database with a backup made by {@link backupDatabase} (or any copy of a unicrm
 * database), refusing, with nothing changed:
 * - a file that is not a unicrm database, or one of a newer schema, or a damaged one ({@link DataFileError});
 * - while a process serves the data directory, or another process has the database open
 *   ({@link DataDirectoryInUseError});
 * - when the data directory's key (`UNICRM_ENCRYPTION_KEY`, else `<dataDir>/encryption.key`, never created here)
 *   is missing or does not open the backup's key check ({@link RestoreKeyError}).
 * Then: the backup is copied with SQLite's backup API to a temporary file in the data directory and checked; the
 * current database is checkpointed and closed, kept as `unicrm.sqlite.before-restore-<time>` (a hard link, else a
 * copy), its stale `-wal`, `-shm` and `-journal` files removed, and the copy renamed over `unicrm.sqlite` (atomic).
 * @param encryptionKey the value of `UNICRM_ENCRYPTION_KEY`, if set
 */
export async function restoreDatabase(dataDir: string, file: string, encryptionKey?: string): Promise<RestoreResult> {
  const directory = resolve(dataDir);
  const backup = openUnicrmDatabase(resolve(file));
  let temporary: string | undefined;
  const claim = (() => {
    try {
      return claimExclusive(directory, 'restore');
    } catch (error) {
      backup.close();
      throw error;
    }
  })();
  try {
    try {
      checkKey(directory, resolve(file), backup, encryptionKey);
      temporary = join(directory, `${DATABASE_FILE}.restore-${process.pid}.tmp`);
      rmSync(temporary, { force: true });
      await backup.backup(temporary, { progress: ALL_PAGES });
    } finally {
      backup.close();
    }
    chmodSync(temporary, 0o600);
    const copy = new Database(temporary, { fileMustExist: true });
    let result: DatabaseCopyResult;
    try {
      copy.pragma('journal_mode = DELETE');
      const check = copy.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new Error(`the copy of ${file} failed SQLite's quick_check (${String(check)})`);
      result = counts(copy, temporary);
    } finally {
      copy.close();
    }
    // From here on, no await: the current database is closed and replaced in one go.
    const database = join(directory, DATABASE_FILE);
    const previous = existsSync(database) ? keepPrevious(directory, database) : null;
    for (const suffix of ['-wal', '-shm', '-journal']) rmSync(`${database}${suffix}`, { force: true });
    renameSync(temporary, database);
    temporary = undefined;
    syncFolder(directory);
    return { ...result, file: database, previous };
  } finally {
    if (temporary) rmSync(temporary, { force: true });
    claim.release();
  }
}

/**
 * @throws RestoreKeyError when the data directory has no key, or its key does not open the backup's key check
 */
function checkKey(directory: string, file: string, backup: Database.Database, encryptionKey?: string): void {
  const location = describeKeyLocation(directory, encryptionKey);
  const key = findEncryptionKey(directory, encryptionKey);
  if (!key) {
    throw new RestoreKeyError(
      `There is no encryption key for ${directory}: ${location} does not exist and UNICRM_ENCRYPTION_KEY is not set. ` +
        `The credentials in ${file} can only be read with the key they were written with: copy that key file to ${location} ` +
        '(mode 0600), or set UNICRM_ENCRYPTION_KEY to the key, and restore again. Nothing was changed.',
    );
  }
  const sealed = backup.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(KEY_CHECK_ROW) as string | undefined;
  if (sealed === undefined) return;
  let opens = false;
  try {
    opens = new SecretBox(key).open(sealed, KEY_CHECK_ROW) === KEY_CHECK;
  } catch {
    opens = false;
  }
  if (!opens) {
    throw new RestoreKeyError(
      `${file} was written with another encryption key than the one in ${location}: with this key its credentials could ` +
        `not be read. Put the key it was written with in ${location === 'UNICRM_ENCRYPTION_KEY' ? 'UNICRM_ENCRYPTION_KEY' : `${location} (mode 0600)`} ` +
        '(keep the current one if you may still need it), and restore again. Nothing was changed.',
    );
  }
}

/**
 * Proves no other process has the database open (an exclusive lock in exclusive locking mode fails while any other
 * connection exists), checkpoints its `-wal` into it, closes it, and keeps it under a dated name.
 * @returns the path it is kept at
 * @throws DataDirectoryInUseError when another process has it open
 */
function keepPrevious(directory: string, database: string): string {
  const current = new Database(database, { fileMustExist: true });
  try {
    current.pragma('busy_timeout = 0');
    current.pragma('locking_mode = EXCLUSIVE');
    try {
      current.exec('BEGIN EXCLUSIVE');
      current.exec('COMMIT');
    } catch (error) {
      if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error;
      throw new DataDirectoryInUseError(
        `restore refused: another process has ${database} open (no API serves it, so a program using the SDK on this ` +
          'directory, or another unicrm command). Stop it and restore again. Nothing was changed.',
        [],
      );
    }
    if ((current.pragma('journal_mode', { simple: true }) as string) === 'wal') current.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    current.close();
  }
  const kept = join(directory, `${DATABASE_FILE}.before-restore-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  try {
    linkSync(database, kept);
  } catch {
    copyFileSync(database, kept);
    chmodSync(kept, 0o600);
  }
  return kept;
}

/** Makes a rename in `folder` durable (fsync of the folder; skipped where the platform cannot). */
function syncFolder(folder: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(folder, 'r');
    fsyncSync(fd);
  } catch {
    // Not every platform can fsync a folder (Windows); the rename is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
