import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SecretBox } from './secret-box';

/** File name of the SQLite database inside the data directory. */
export const DATABASE_FILE = 'unicrm.sqlite';

const MIGRATIONS: string[] = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE integrated_accounts (
     id TEXT PRIMARY KEY,
     environment_id TEXT NOT NULL,
     tenant_id TEXT NOT NULL,
     integration TEXT NOT NULL,
     status TEXT NOT NULL,
     public_context TEXT NOT NULL,
     sealed_context TEXT NOT NULL,
     last_error TEXT,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE INDEX integrated_accounts_environment ON integrated_accounts (environment_id, tenant_id);
   CREATE TABLE api_tokens (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     environment_id TEXT NOT NULL,
     token_hash BLOB NOT NULL UNIQUE,
     created_at TEXT NOT NULL
   );`,
];

const KEY_CHECK = 'unicrm-key-check';

/**
 * Opens (creating if needed) the SQLite database in `dataDir` (DESIGN.md §5): WAL journal, a busy
 * timeout so the API and the CLI can share it, foreign keys on, migrations applied by `user_version`.
 * Verifies that `box` opens what this directory was written with.
 * @throws Error with a clear message when the key does not match the data directory
 */
export function openDatabase(dataDir: string, box: SecretBox): Database.Database {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, DATABASE_FILE));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    const version = db.pragma('user_version', { simple: true }) as number;
    db.transaction(() => {
      for (let i = version; i < MIGRATIONS.length; i++) db.exec(MIGRATIONS[i] as string);
      db.pragma(`user_version = ${MIGRATIONS.length}`);
    }).immediate();
    verifyKey(db, box, dataDir);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

function verifyKey(db: Database.Database, box: SecretBox, dataDir: string): void {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get('key_check') as { value: string } | undefined;
  if (!row) {
    db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run('key_check', box.seal(KEY_CHECK, 'key_check'));
    return;
  }
  let opened = '';
  try {
    opened = box.open(row.value, 'key_check');
  } catch {
    // fall through to the error below
  }
  if (opened !== KEY_CHECK) {
    throw new Error(
      `The encryption key does not match the one the data in ${dataDir} was written with. ` +
        'Set UNICRM_ENCRYPTION_KEY to that key, or restore its encryption.key file.',
    );
  }
}
