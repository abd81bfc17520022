import Database from 'better-sqlite3';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { EncryptionKeyChangedError } from '@unicrm/model';
import { noteDatabaseWrite } from './change-stamp';
import { keyFits } from './database';
import { type DataKeyRecord, type DataKeyTable, Keyring, newDataKey, RotationInProgressError, type SealedRow, sealedPrefix } from './keyring';
import type { SecretBox } from './secret-box';

/** The lock file a SQLite rotation holds (an empty SQLite database in an exclusive transaction). */
export const ROTATION_LOCK_FILE = 'rotation.lock';

/** `LIKE` pattern of the values sealed with `kid` (a key id is hex: nothing to escape). */
const sealedWith = (kid: string) => `${sealedPrefix(kid)}%`;

/**
 * Every row of the SQLite data-key table, oldest first.
 */
export function readSqliteDataKeys(db: Database.Database): DataKeyRecord[] {
  return db.prepare('SELECT kid, wrapped, state, created_at, retired_at FROM encryption_keys ORDER BY created_at, kid').all() as DataKeyRecord[];
}

/**
 * The keyring of a SQLite data directory: its data keys unwrapped with `master`; the first data key is made when
 * there is none (a new directory, or one written before the keyring).
 * @throws DataKeyUnwrapError when `master` does not open the directory's data keys
 */
export function openSqliteKeyring(db: Database.Database, master: SecretBox): Keyring {
  const keyring = new Keyring(master);
  const records = readSqliteDataKeys(db);
  if (records.some((record) => record.state === 'active')) {
    // The usual case: no write transaction (a read-only command does not wait for the API's writes).
    keyring.load(records);
    return keyring;
  }
  db.transaction(() => {
    const active = db.prepare("SELECT 1 FROM encryption_keys WHERE state = 'active'").get();
    if (active) return;
    const { kid, wrapped } = newDataKey(master);
    db.prepare("INSERT INTO encryption_keys (kid, wrapped, state, created_at) VALUES (?, ?, 'active', ?)").run(kid, wrapped, new Date().toISOString());
  }).immediate();
  keyring.load(readSqliteDataKeys(db));
  return keyring;
}

/**
 * The data-key table and the sealed contexts of a SQLite data directory, for `rotateDataKey`. Each write is a
 * transaction of its own, so the API keeps serving between batches; each notes the write for the caches
 * ({@link noteDatabaseWrite}).
 */
export class SqliteDataKeyTable implements DataKeyTable {
  constructor(
    private readonly db: Database.Database,
    private readonly dataDir: string,
  ) {}

  async readKeys(): Promise<DataKeyRecord[]> {
    return readSqliteDataKeys(this.db);
  }

  /**
   * @throws EncryptionKeyChangedError when `master` no longer opens the key check: `keys rotate --master` replaced the
   * key after this process read it (nothing written; a key wrapped with the old master key would open for nobody)
   */
  async activate(record: Pick<DataKeyRecord, 'kid' | 'wrapped' | 'created_at'>, master: SecretBox): Promise<void> {
    this.db.transaction(() => {
      // In the write transaction: the master rotation's transaction is either before it (seen here) or after it (then
      // it wraps this key again too).
      if (!keyFits(this.db, master)) throw new EncryptionKeyChangedError(`the data directory ${this.dataDir}`);
      this.db.prepare("UPDATE encryption_keys SET state = 'previous' WHERE state = 'active'").run();
      this.db.prepare("INSERT INTO encryption_keys (kid, wrapped, state, created_at) VALUES (?, ?, 'active', ?)").run(record.kid, record.wrapped, record.created_at);
    }).immediate();
    noteDatabaseWrite(this.db);
  }

  async notSealedWith(kid: string, afterId: string, limit: number): Promise<SealedRow[]> {
    return this.db
      .prepare('SELECT id, sealed_context AS sealed FROM integrated_accounts WHERE id > ? AND sealed_context NOT LIKE ? ORDER BY id LIMIT ?')
      .all(afterId, sealedWith(kid), limit) as SealedRow[];
  }

  async countNotSealedWith(kid: string): Promise<number> {
    return this.db.prepare('SELECT count(*) FROM integrated_accounts WHERE sealed_context NOT LIKE ?').pluck().get(sealedWith(kid)) as number;
  }

  async reseal(rows: ReadonlyArray<SealedRow & { resealed: string }>): Promise<number> {
    const update = this.db.prepare('UPDATE integrated_accounts SET sealed_context = ? WHERE id = ? AND sealed_context = ?');
    const written = this.db.transaction(() => rows.reduce((sum, row) => sum + update.run(row.resealed, row.id, row.sealed).changes, 0)).immediate();
    noteDatabaseWrite(this.db);
    return written;
  }

  async retire(kid: string, at: string): Promise<boolean> {
    const { changes } = this.db
      .prepare(
        `UPDATE encryption_keys SET state = 'retired', wrapped = NULL, retired_at = ?
         WHERE kid = ? AND state = 'previous' AND NOT EXISTS (SELECT 1 FROM integrated_accounts WHERE sealed_context LIKE ?)`,
      )
      .run(at, kid, sealedWith(kid));
    if (changes > 0) noteDatabaseWrite(this.db);
    return changes > 0;
  }

  /** Holds `<dataDir>/rotation.lock` in an exclusive transaction: the OS drops it if this process dies. */
  async exclusively<T>(work: () => Promise<T>): Promise<T> {
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    const path = join(this.dataDir, ROTATION_LOCK_FILE);
    const lock = new Database(path);
    try {
      chmodSync(path, 0o600);
      lock.pragma('busy_timeout = 0');
      try {
        lock.exec('BEGIN EXCLUSIVE');
      } catch (error) {
        if ((error as { code?: string }).code === 'SQLITE_BUSY') throw new RotationInProgressError(`the data directory ${this.dataDir}`);
        throw error;
      }
      return await work();
    } finally {
      lock.close();
    }
  }
}
