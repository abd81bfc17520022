import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CONNECT_MIGRATION_SQLITE } from './connect-schema';
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
  `ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
   ALTER TABLE api_tokens ADD COLUMN revoked_at TEXT;
   CREATE INDEX integrated_accounts_listing ON integrated_accounts (environment_id, created_at, id);`,
  `CREATE TABLE idempotency_records (
     scope TEXT PRIMARY KEY,
     state TEXT NOT NULL,
     fingerprint TEXT NOT NULL,
     status_code INTEGER,
     body TEXT,
     raw_text TEXT,
     headers TEXT NOT NULL DEFAULT '{}',
     created_at TEXT NOT NULL,
     expires_at TEXT NOT NULL
   );
   CREATE INDEX idempotency_records_expiry ON idempotency_records (expires_at);`,
  // Issue 12: an in-flight key is held by a claim token under a lease its request renews (docs/reliability.md).
  // Records of an older version get a random token; an in-flight one gets a lease that ended when it was claimed, so
  // it is treated as abandoned (looked for before creating again), never as live.
  `ALTER TABLE idempotency_records ADD COLUMN claim_token TEXT NOT NULL DEFAULT '';
   ALTER TABLE idempotency_records ADD COLUMN lease_expires_at TEXT NOT NULL DEFAULT '';
   UPDATE idempotency_records SET claim_token = lower(hex(randomblob(16))), lease_expires_at = created_at;`,
  // Issue 14: the keyring. Data keys wrapped with the master key; at most one active (docs/security.md "Rotating").
  `CREATE TABLE encryption_keys (
     kid TEXT PRIMARY KEY,
     wrapped TEXT,
     state TEXT NOT NULL CHECK (state IN ('active', 'previous', 'retired')),
     created_at TEXT NOT NULL,
     retired_at TEXT
   );
   CREATE UNIQUE INDEX encryption_keys_one_active ON encryption_keys (state) WHERE state = 'active';`,
  // Issue 17: link tokens (by hash), webhooks (secret sealed) and the account-event outbox (docs/connect.md).
  CONNECT_MIGRATION_SQLITE,
];

/** The schema version a database of this unicrm has (`PRAGMA user_version` after the migrations). */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** The tables every unicrm database has, from its first schema version on. */
export const UNICRM_TABLES = ['meta', 'integrated_accounts', 'api_tokens'] as const;

/** The known plaintext sealed in `meta.key_check`: opening it proves a key is the data directory's. */
export const KEY_CHECK = 'unicrm-key-check';
/** `meta` key of the key check. */
export const KEY_CHECK_ROW = 'key_check';

/**
 * Opens (creating if needed) the SQLite database in `dataDir` (DESIGN.md §5): WAL journal, a busy
 * timeout so the API and the CLI can share it, foreign keys on, migrations applied by `user_version`.
 * Verifies that `box` opens what this directory was written with.
 * @throws Error with a clear message when the key does not match the data directory
 */
export function openDatabase(dataDir: string, box: SecretBox, options: { verifyKey?: boolean } = {}): Database.Database {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, DATABASE_FILE);
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    // Only the owner may read the database (sealed secrets, token hashes) and its WAL files.
    for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, 0o600);
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    const version = db.pragma('user_version', { simple: true }) as number;
    db.transaction(() => {
      for (let i = version; i < MIGRATIONS.length; i++) db.exec(MIGRATIONS[i] as string);
      db.pragma(`user_version = ${MIGRATIONS.length}`);
    }).immediate();
    if (options.verifyKey !== false) verifyKey(db, box, dataDir);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/**
 * True when `box` opens the data directory's key check (or there is none yet, in which case one is
 * written with `box`).
 */
export function keyFits(db: Database.Database, box: SecretBox): boolean {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(KEY_CHECK_ROW) as { value: string } | undefined;
  if (!row) {
    db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(KEY_CHECK_ROW, box.seal(KEY_CHECK, KEY_CHECK_ROW));
    return true;
  }
  try {
    return box.open(row.value, KEY_CHECK_ROW) === KEY_CHECK;
  } catch {
    return false;
  }
}

function verifyKey(db: Database.Database, box: SecretBox, dataDir: string): void {
  if (!keyFits(db, box)) {
    throw new Error(
      `The encryption key does not match the one the data in ${dataDir} was written with. ` +
        'Set UNICRM_ENCRYPTION_KEY to that key, or restore its encryption.key file.',
    );
  }
}
