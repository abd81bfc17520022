import type { StoredAccount } from '@unicrm/model';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteAccountStore } from './account-store';
import { databaseChangeStamp, noteDatabaseWrite, STAMP_REUSE_MS } from './change-stamp';
import { type DataDirectory, openDataDirectory } from './data-directory';
import { DATABASE_FILE } from './database';
import { rotateEncryptionKey } from './key-rotation';
import { SqliteApiTokenStore } from './token-store';

let dir: string;
let opened: DataDirectory[];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'unicrm-stamp-'));
  opened = [];
});
afterEach(() => {
  for (const { db } of opened) if (db.open) db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A connection to the data directory, as a second process (the CLI) would open it. */
function connect(): DataDirectory {
  const directory = openDataDirectory(dir);
  opened.push(directory);
  return directory;
}

const ID = '00000000-0000-4000-8000-000000000001';
const account = (extra: Partial<StoredAccount> = {}): StoredAccount => ({
  id: ID,
  environmentId: 'env-a',
  tenantId: 'acme',
  integration: 'pipeliner',
  status: 'active',
  context: { service_url: 'https://x.example', space_id: 's', username: 'user', password: 'SECRET' },
  publicContext: { service_url: 'https://x.example', space_id: 's' },
  lastError: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  ...extra,
});
/** Lets the event loop turn: a commit by another process is seen from the next turn on (databaseChangeStamp). */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

const tokenRecord = { id: 't1', name: 'ci', environmentId: 'default', createdAt: '2026-01-01T00:00:00.000Z', expiresAt: null, revokedAt: null };

describe('databaseChangeStamp', () => {
  it('stays the same while nothing is written', async () => {
    const { db, box } = connect();
    const store = new SqliteAccountStore(db, box);
    await store.create(account());
    const stamp = store.changeStamp();
    await store.get('env-a', ID);
    await store.list('env-a', { limit: 10 });
    expect(store.changeStamp()).toBe(stamp);
    expect(store.changeStamp()).toBe(stamp);
    expect(databaseChangeStamp(db)).toBe(stamp);
  });

  it('moves on each write of the account store that changed a row, and only then', async () => {
    const { db, box } = connect();
    const store = new SqliteAccountStore(db, box);
    const stamps = [store.changeStamp()];
    const expectMoved = (moved: boolean) => {
      const stamp = store.changeStamp();
      if (moved) expect(stamp).toBeGreaterThan(stamps[stamps.length - 1] as number);
      else expect(stamp).toBe(stamps[stamps.length - 1]);
      stamps.push(stamp);
    };
    await store.create(account());
    expectMoved(true);
    expect(await store.update(account({ tenantId: 'other' }))).toBe(true);
    expectMoved(true);
    expect(await store.update(account({ environmentId: 'env-b' }))).toBe(false);
    expectMoved(false);
    await store.setStatus('env-a', ID, 'needs_reauth', 'rejected', '2026-02-01T00:00:00.000Z', '1999-01-01T00:00:00.000Z');
    expectMoved(false); // ifUpdatedAt did not match: nothing changed
    expect((await store.get('env-a', ID))?.status).toBe('active');
    await store.setStatus('env-a', ID, 'needs_reauth', 'rejected', '2026-02-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z');
    expectMoved(true);
    expect((await store.get('env-a', ID))?.status).toBe('needs_reauth');
    expect(await store.delete('env-b', ID)).toBe(false);
    expectMoved(false);
    expect(await store.delete('env-a', ID)).toBe(true);
    expectMoved(true);
  });

  it('moves on each write of the token store that changed a row, and is shared by the stores of one connection', async () => {
    const { db, box } = connect();
    const accounts = new SqliteAccountStore(db, box);
    const tokens = new SqliteApiTokenStore(db);
    const before = tokens.changeStamp();
    await tokens.add(tokenRecord, Buffer.alloc(32, 1));
    const added = tokens.changeStamp();
    expect(added).toBeGreaterThan(before);
    expect(accounts.changeStamp()).toBe(added);
    expect(await tokens.revoke('t1', '2026-02-01T00:00:00.000Z')).toBe(true);
    const revoked = tokens.changeStamp();
    expect(revoked).toBeGreaterThan(added);
    expect(await tokens.revoke('t1', '2026-03-01T00:00:00.000Z')).toBe(false);
    expect(tokens.changeStamp()).toBe(revoked);
    await accounts.create(account());
    expect(tokens.changeStamp()).toBeGreaterThan(revoked);
  });

  it("moves after another process's store committed, once, then stays", async () => {
    const a = connect();
    const reader = new SqliteAccountStore(a.db, a.box);
    await reader.create(account());
    const stamp = reader.changeStamp();
    const b = connect();
    await new SqliteAccountStore(b.db, b.box).update(account({ context: { ...account().context, password: 'ROTATED' }, updatedAt: '2026-03-01T00:00:00.000Z' }));
    await nextTurn();
    const after = reader.changeStamp();
    expect(after).toBeGreaterThan(stamp);
    expect(reader.changeStamp()).toBe(after);
    expect((await reader.get('env-a', ID))?.context.password).toBe('ROTATED');

    await new SqliteApiTokenStore(b.db).add(tokenRecord, Buffer.alloc(32, 2));
    await nextTurn();
    expect(new SqliteApiTokenStore(a.db).changeStamp()).toBeGreaterThan(after);
  });

  it('moves after a plain SQL write on another connection (not through a store)', async () => {
    const a = connect();
    const store = new SqliteAccountStore(a.db, a.box);
    await store.create(account());
    const stamp = store.changeStamp();
    const raw = new Database(join(dir, DATABASE_FILE));
    raw.prepare("UPDATE integrated_accounts SET status = 'needs_reauth' WHERE id = ?").run(ID);
    raw.close();
    await nextTurn();
    expect(store.changeStamp()).toBeGreaterThan(stamp);
    expect((await store.get('env-a', ID))?.status).toBe('needs_reauth');
  });

  it('moves after a key rotation, on the rotating connection and on another one; a rolled-back one changes nothing', async () => {
    const a = connect();
    const store = new SqliteAccountStore(a.db, a.box);
    await store.create(account());
    // Sealed with the master key itself, as before the keyring: the master key rotation re-seals it.
    a.db.prepare('UPDATE integrated_accounts SET sealed_context = ? WHERE id = ?').run(a.box.seal(JSON.stringify(account().context), ID), ID);
    const other = connect();
    const otherStore = new SqliteAccountStore(other.db, other.box);
    const b = connect(); // opening a data directory commits (its migrations), so before the stamps are taken
    const bStamp = databaseChangeStamp(b.db);
    expect(() =>
      rotateEncryptionKey(dir, b.db, b.box, {
        beforeRow: () => {
          throw new Error('interrupted');
        },
      }),
    ).toThrow('interrupted');
    await nextTurn();
    expect(databaseChangeStamp(b.db)).toBeGreaterThan(bStamp); // the rotating connection's caches read again
    // The rotation recorded its attempt, so this process's caches read again (harmless); nothing was committed.
    const afterRollback = store.changeStamp();
    const otherAfterRollback = otherStore.changeStamp();
    expect((await store.get('env-a', ID))?.context.password).toBe('SECRET');

    expect(rotateEncryptionKey(dir, a.db, a.box).accounts).toBe(1);
    await nextTurn();
    expect(store.changeStamp()).toBeGreaterThan(afterRollback);
    expect(otherStore.changeStamp()).toBeGreaterThan(otherAfterRollback);
    const raw = new Database(join(dir, DATABASE_FILE), { readonly: true });
    const sealed = raw.prepare('SELECT sealed_context FROM integrated_accounts').pluck().get();
    raw.close();
    expect(() => a.box.open(sealed as string, ID)).toThrow(); // re-sealed under the new key: a cache must not outlive it
  });

  it('moves after noteDatabaseWrite at once, and throws once the connection is closed', async () => {
    const { db } = connect();
    const stamp = databaseChangeStamp(db);
    noteDatabaseWrite(db);
    expect(databaseChangeStamp(db)).toBe(stamp + 1);
    db.close();
    await nextTurn();
    expect(() => databaseChangeStamp(db)).toThrow('The database connection is not open');
  });

  it("sees a write through another connection of this process's stores at once, in the same turn", async () => {
    const a = connect();
    const store = new SqliteAccountStore(a.db, a.box);
    await store.create(account());
    const b = connect();
    const stamp = store.changeStamp();
    await new SqliteAccountStore(b.db, b.box).delete('env-a', ID);
    // Moved at once; by 1 (the write noted in this process) or 2 when over 1 ms passed and data_version was read again
    // (it also counts b's commit): on a loaded machine both happen, and the contract is only that it moves.
    expect(store.changeStamp()).toBeGreaterThan(stamp);
    expect(await store.get('env-a', ID)).toBeUndefined();
  });

  it('reuses a pragma reading within one turn for at most STAMP_REUSE_MS; a write without the stores is seen after it, or in the next turn', async () => {
    const a = connect();
    const store = new SqliteAccountStore(a.db, a.box);
    await store.create(account());
    await nextTurn();
    const raw = new Database(join(dir, DATABASE_FILE));
    const stamp = store.changeStamp();
    raw.prepare("UPDATE integrated_accounts SET status = 'needs_reauth' WHERE id = ?").run(ID);
    const waitUntil = performance.now() + STAMP_REUSE_MS + 0.5;
    while (performance.now() < waitUntil) {
      // the same turn, as a synchronous child process would keep it
    }
    expect(store.changeStamp()).toBe(stamp + 1);
    raw.prepare("UPDATE integrated_accounts SET status = 'active' WHERE id = ?").run(ID);
    raw.close();
    await nextTurn();
    expect(store.changeStamp()).toBe(stamp + 2);
    expect((await store.get('env-a', ID))?.status).toBe('active');
  });
});
