import type { StoredAccount } from '@unicrm/model';
import Database from 'better-sqlite3';
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteAccountStore } from './account-store';
import { backupDatabase, DataFileError, restoreDatabase, RestoreKeyError } from './backup';
import { openDataDirectory } from './data-directory';
import { DATABASE_FILE, SCHEMA_VERSION } from './database';
import { KEY_FILE } from './secret-box';
import { claimServing, DataDirectoryInUseError } from './serving-lock';

// Issue 12, item 3: copying the data directory loses the accounts still in the -wal file; `unicrm backup` uses
// SQLite's online backup API instead, and `unicrm restore` puts a backup back, refusing what would lose data.
let root: string;
let dir: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'unicrm-backup-'));
  dir = join(root, 'data');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const account = (n: number): StoredAccount => ({
  id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
  environmentId: 'env-a',
  tenantId: 'tenant',
  integration: 'pipeliner',
  status: 'active',
  context: { service_url: 'https://x.example', space_id: 's', username: `user-${n}`, password: `SECRET-${n}` },
  publicContext: { service_url: 'https://x.example', space_id: 's' },
  lastError: null,
  createdAt: `2026-01-01T00:00:00.${String(n).padStart(3, '0')}Z`,
  updatedAt: `2026-01-01T00:00:00.${String(n).padStart(3, '0')}Z`,
});

/** The passwords of every account in a database file, read with the data directory's key. */
async function passwordsIn(file: string, keyDir = dir): Promise<string[]> {
  const copyDir = mkdtempSync(join(root, 'read-'));
  copyFileSync(file, join(copyDir, DATABASE_FILE));
  copyFileSync(join(keyDir, KEY_FILE), join(copyDir, KEY_FILE));
  const { db, box } = openDataDirectory(copyDir);
  const passwords = (await new SqliteAccountStore(db, box).list('env-a', { limit: 500 })).accounts.map((a) => a.context.password as string);
  db.close();
  return passwords;
}

/** The error a promise rejects with. */
async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

async function seed(count: number, from = 1): Promise<void> {
  const { db, box } = openDataDirectory(dir);
  const store = new SqliteAccountStore(db, box);
  for (let n = from; n < from + count; n++) await store.create(account(n));
  db.close();
}

describe('backupDatabase', () => {
  it('holds the accounts that are still only in the -wal file (a copy of unicrm.sqlite does not)', async () => {
    const { db, box } = openDataDirectory(dir);
    db.pragma('wal_checkpoint(TRUNCATE)'); // the schema is in unicrm.sqlite
    db.pragma('wal_autocheckpoint = 0'); // as between two of SQLite's automatic checkpoints: the commits sit in the WAL
    const store = new SqliteAccountStore(db, box);
    for (let n = 1; n <= 3; n++) await store.create(account(n));
    expect(statSync(join(dir, `${DATABASE_FILE}-wal`)).size).toBeGreaterThan(0);

    // What a copy of the database file alone holds: none of the three.
    const naive = join(root, 'naive.sqlite');
    copyFileSync(join(dir, DATABASE_FILE), naive);
    const copied = new Database(naive, { readonly: true });
    expect(copied.prepare('SELECT count(*) FROM integrated_accounts').pluck().get()).toBe(0);
    copied.close();

    const file = join(root, 'backup.sqlite');
    const result = await backupDatabase(dir, file);
    expect(result).toEqual({ file, bytes: statSync(file).size, accounts: 3, apiTokens: 0, schemaVersion: SCHEMA_VERSION });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // One self-contained file: no -wal of its own is needed to read it.
    expect(existsSync(`${file}-wal`)).toBe(false);
    const backup = new Database(file, { readonly: true });
    expect(backup.pragma('journal_mode', { simple: true })).toBe('delete');
    backup.close();
    db.close();
    expect(await passwordsIn(file)).toEqual(['SECRET-1', 'SECRET-2', 'SECRET-3']);
  });

  it('is consistent while another process keeps writing (each of its transactions is in or out whole)', async () => {
    await seed(1);
    // A writer in its own process: one row per transaction, as fast as it can, and it reports how far it got.
    const script = `
      const Database = require(${JSON.stringify(require.resolve('better-sqlite3'))});
      const db = new Database(${JSON.stringify(join(dir, DATABASE_FILE))});
      db.pragma('busy_timeout = 5000');
      const insert = db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)");
      let n = 0;
      setInterval(() => { for (let i = 0; i < 20; i++) { insert.run('row-' + n, 'x'.repeat(2000)); n++; } process.stdout.write(n + '\\n'); }, 1);
    `;
    const writer: ChildProcess = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let written = 0;
      await new Promise<void>((resolve) => {
        writer.stdout?.on('data', (chunk: Buffer) => {
          written = Number(chunk.toString().trim().split('\n').pop());
          if (written >= 400) resolve();
        });
      });
      const before = written;
      const file = join(root, 'during-writes.sqlite');
      await backupDatabase(dir, file);
      const backup = new Database(file, { readonly: true });
      expect(backup.pragma('quick_check', { simple: true })).toBe('ok');
      const rows = backup.prepare("SELECT key FROM meta WHERE key LIKE 'row-%'").pluck().all() as string[];
      backup.close();
      // Everything committed before the backup started is in it, and what is in it is a prefix: no holes.
      expect(rows.length).toBeGreaterThanOrEqual(before);
      expect(new Set(rows)).toEqual(new Set(Array.from({ length: rows.length }, (_, i) => `row-${i}`)));
      expect(await passwordsIn(file)).toEqual(['SECRET-1']);
    } finally {
      writer.kill();
    }
  });

  it('refuses to overwrite a file unless asked, and says when there is no database', async () => {
    const file = join(root, 'exists.sqlite');
    writeFileSync(file, 'keep me');
    await expect(backupDatabase(dir, file)).rejects.toThrow(DataFileError);
    await expect(backupDatabase(dir, file)).rejects.toThrow(`There is no unicrm database in ${dir}`);
    await seed(1);
    await expect(backupDatabase(dir, file)).rejects.toThrow(`${file} exists already; name a new file (or --force to replace it).`);
    expect(readFileSync(file, 'utf8')).toBe('keep me');
    await expect(backupDatabase(dir, file, { overwrite: true })).resolves.toMatchObject({ accounts: 1 });
    await expect(backupDatabase(dir, join(dir, DATABASE_FILE), { overwrite: true })).rejects.toThrow('cannot be written over the database itself');
    await expect(backupDatabase(dir, join(root, 'no-such-folder', 'b.sqlite'))).rejects.toThrow(`The folder ${join(root, 'no-such-folder')} does not exist.`);
  });
});

describe('restoreDatabase', () => {
  it('puts a backup back, keeps the database it replaced, and leaves no stale -wal', async () => {
    await seed(2);
    const file = join(root, 'backup.sqlite');
    await backupDatabase(dir, file);
    // Later: one account removed, one added, and a connection that leaves its -wal behind when killed... closed here.
    const { db, box } = openDataDirectory(dir);
    const store = new SqliteAccountStore(db, box);
    await store.delete('env-a', account(1).id);
    await store.create(account(3));
    db.close();

    const result = await restoreDatabase(dir, file);
    expect(result).toMatchObject({ file: join(dir, DATABASE_FILE), accounts: 2, apiTokens: 0, schemaVersion: SCHEMA_VERSION });
    expect(result.previous).toMatch(new RegExp(`^${join(dir, DATABASE_FILE)}\\.before-restore-\\d{4}-\\d\\d-\\d\\dT`));
    for (const suffix of ['-wal', '-shm', '-journal']) expect(existsSync(join(dir, `${DATABASE_FILE}${suffix}`))).toBe(false);
    expect(statSync(join(dir, DATABASE_FILE)).mode & 0o777).toBe(0o600);
    expect(await passwordsIn(join(dir, DATABASE_FILE))).toEqual(['SECRET-1', 'SECRET-2']);
    // The replaced database is whole: account 1 gone, account 3 there.
    expect(await passwordsIn(result.previous as string)).toEqual(['SECRET-2', 'SECRET-3']);
    // And the data directory opens as usual (WAL again, writable).
    await seed(1, 4);
    expect(await passwordsIn(join(dir, DATABASE_FILE))).toEqual(['SECRET-1', 'SECRET-2', 'SECRET-4']);
  });

  it('restores into a new data directory once the backup’s key file is there, and not before', async () => {
    await seed(1);
    const file = join(root, 'backup.sqlite');
    await backupDatabase(dir, file);
    const other = join(root, 'new-home');
    await expect(restoreDatabase(other, file)).rejects.toThrow(RestoreKeyError);
    await expect(restoreDatabase(other, file)).rejects.toThrow(`There is no encryption key for ${other}: ${join(other, KEY_FILE)} does not exist`);
    expect(existsSync(join(other, DATABASE_FILE))).toBe(false);
    expect(existsSync(join(other, KEY_FILE))).toBe(false); // never made up: a new key could not read the backup
    copyFileSync(join(dir, KEY_FILE), join(other, KEY_FILE));
    await expect(restoreDatabase(other, file)).resolves.toMatchObject({ accounts: 1, previous: null });
    expect(await passwordsIn(join(other, DATABASE_FILE), other)).toEqual(['SECRET-1']);
  });

  it('refuses a backup written with another key, and changes nothing', async () => {
    await seed(1);
    const file = join(root, 'backup.sqlite');
    await backupDatabase(dir, file);
    const other = join(root, 'other');
    mkdirSync(other);
    const otherData = openDataDirectory(other); // a data directory with a key of its own
    await new SqliteAccountStore(otherData.db, otherData.box).create(account(9));
    otherData.db.close();
    const before = readFileSync(join(other, DATABASE_FILE));
    const error = await failure(restoreDatabase(other, file));
    expect(error).toBeInstanceOf(RestoreKeyError);
    expect(error.message).toBe(
      `${file} was written with another encryption key than the one in ${join(other, KEY_FILE)}: with this key its credentials could not be read. ` +
        `Put the key it was written with in ${join(other, KEY_FILE)} (mode 0600) (keep the current one if you may still need it), and restore again. Nothing was changed.`,
    );
    expect(readFileSync(join(other, DATABASE_FILE))).toEqual(before);
    // With UNICRM_ENCRYPTION_KEY the message names the variable.
    const envKey = readFileSync(join(other, KEY_FILE), 'utf8').trim();
    await expect(restoreDatabase(other, file, envKey)).rejects.toThrow('another encryption key than the one in UNICRM_ENCRYPTION_KEY');
  });

  it.each([
    ['a text file', (file: string) => writeFileSync(file, 'name,pipeline\nQualified,1\n'), 'is not a unicrm backup: file is not a database (not a SQLite database).'],
    ['an empty file', (file: string) => writeFileSync(file, ''), "is not a unicrm backup: a SQLite database without unicrm's tables (meta, integrated_accounts, api_tokens)."],
    [
      'another application’s SQLite database',
      (file: string) => {
        const db = new Database(file);
        db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)');
        db.pragma('user_version = 2');
        db.close();
      },
      "is not a unicrm backup: a SQLite database without unicrm's tables (meta, integrated_accounts, api_tokens).",
    ],
    [
      'a database of a newer unicrm',
      (file: string) => {
        const db = new Database(file);
        db.exec('CREATE TABLE meta (key TEXT); CREATE TABLE integrated_accounts (id TEXT); CREATE TABLE api_tokens (id TEXT)');
        db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
        db.close();
      },
      `was written by a newer unicrm (schema version ${SCHEMA_VERSION + 1}; this one knows up to ${SCHEMA_VERSION}). Restore it with that version.`,
    ],
    ['a file that does not exist', () => undefined, 'does not exist.'],
  ])('refuses %s, and changes nothing', async (_name, make, message) => {
    await seed(1);
    const before = readFileSync(join(dir, DATABASE_FILE));
    const file = join(root, 'not-a-backup');
    make(file);
    const error = await failure(restoreDatabase(dir, file));
    expect(error).toBeInstanceOf(DataFileError);
    expect(error.message).toBe(`${file} ${message}`);
    expect(readFileSync(join(dir, DATABASE_FILE))).toEqual(before);
    expect(await passwordsIn(join(dir, DATABASE_FILE))).toEqual(['SECRET-1']);
  });

  it('refuses while an API serves the data directory, and changes nothing', async () => {
    await seed(1);
    const file = join(root, 'backup.sqlite');
    await backupDatabase(dir, file);
    await seed(1, 2);
    const serving = claimServing(dir);
    try {
      const error = await failure(restoreDatabase(dir, file));
      expect(error).toBeInstanceOf(DataDirectoryInUseError);
      expect(error.message).toContain(`restore refused: the unicrm API is serving the data directory ${dir} (pid ${process.pid}`);
    } finally {
      serving.release();
    }
    expect(await passwordsIn(join(dir, DATABASE_FILE))).toEqual(['SECRET-1', 'SECRET-2']);
  });

  it('refuses while another program has the database open (an SDK user), and changes nothing', async () => {
    await seed(1);
    const file = join(root, 'backup.sqlite');
    await backupDatabase(dir, file);
    const { db, box } = openDataDirectory(dir);
    await new SqliteAccountStore(db, box).create(account(2));
    try {
      const error = await failure(restoreDatabase(dir, file));
      expect(error).toBeInstanceOf(DataDirectoryInUseError);
      expect(error.message).toBe(
        `restore refused: another process has ${join(dir, DATABASE_FILE)} open (no API serves it, so a program using the SDK on this ` +
          'directory, or another unicrm command). Stop it and restore again. Nothing was changed.',
      );
      expect((await new SqliteAccountStore(db, box).list('env-a', { limit: 10 })).accounts).toHaveLength(2);
    } finally {
      db.close();
    }
    expect(await passwordsIn(join(dir, DATABASE_FILE))).toEqual(['SECRET-1', 'SECRET-2']);
    expect(existsSync(join(dir, `${DATABASE_FILE}.restore-${process.pid}.tmp`))).toBe(false);
  });
});
