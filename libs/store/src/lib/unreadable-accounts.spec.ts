import { EncryptionKeyChangedError, type StoredAccount } from '@unicrm/model';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteAccountStore } from './account-store';
import { openDataDirectory } from './data-directory';
import { DATABASE_FILE } from './database';
import { openSqliteKeyring, SqliteDataKeyTable } from './data-keys';
import { rotateEncryptionKey } from './key-rotation';
import { rotateDataKey } from './keyring';

// Issue 12, items 2 and 11: one unreadable row must not make the store throw (a listing of its environment failed
// with a "bad cursor" 400 on main), and a store whose key was rotated under it must not write with the old key.
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'unicrm-unreadable-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const account = (n: number): StoredAccount => ({
  id: `00000000-0000-4000-8000-00000000000${n}`,
  environmentId: 'env-a',
  tenantId: 'tenant',
  integration: 'pipeliner',
  status: 'active',
  context: { service_url: 'https://x.example', space_id: 's', username: `user-${n}`, password: `SECRET-${n}` },
  publicContext: { service_url: 'https://x.example', space_id: 's' },
  lastError: null,
  createdAt: `2026-01-0${n}T00:00:00.000Z`,
  updatedAt: `2026-01-0${n}T00:00:00.000Z`,
});

async function seed(count: number): Promise<void> {
  const { db, box } = openDataDirectory(dir);
  const store = new SqliteAccountStore(db, box);
  for (let n = 1; n <= count; n++) await store.create(account(n));
  db.close();
}

/** Changes one column of account n directly in SQLite, as someone with the file could. */
function tamper(n: number, column: 'sealed_context' | 'public_context', value: (current: string) => string): void {
  const raw = new Database(join(dir, DATABASE_FILE));
  const current = raw.prepare(`SELECT ${column} FROM integrated_accounts WHERE id = ?`).pluck().get(account(n).id) as string;
  raw.prepare(`UPDATE integrated_accounts SET ${column} = ? WHERE id = ?`).run(value(current), account(n).id);
  raw.close();
}

describe('SqliteAccountStore with unreadable rows', () => {
  it.each([
    ['a flipped ciphertext byte', 'sealed_context', (s: string) => s.slice(0, -4) + (s.endsWith('AAAA') ? 'BBBB' : 'AAAA'), 'credentials_unreadable'],
    ['a sealed value that is not one', 'sealed_context', () => 'garbage', 'credentials_unreadable'],
    ['a public context that is not JSON', 'public_context', () => '{not json', 'public_context_unreadable'],
    ['a public context that is JSON but not an object', 'public_context', () => '[1,2]', 'public_context_unreadable'],
  ] as const)('lists every account and marks the one with %s', async (_name, column, value, fault) => {
    await seed(3);
    tamper(2, column, value);
    const { db, box } = openDataDirectory(dir);
    const store = new SqliteAccountStore(db, box);
    const page = await store.list('env-a', { limit: 10 });
    expect(page.accounts.map((a) => [a.id, a.fault])).toEqual([
      [account(1).id, undefined],
      [account(2).id, fault],
      [account(3).id, undefined],
    ]);
    expect(page.accounts[0]?.context.password).toBe('SECRET-1');
    expect((await store.get('env-a', account(2).id))?.fault).toBe(fault);
    // Paging over it works, and the cursor after it is good.
    const first = await store.list('env-a', { limit: 2 });
    expect((await store.list('env-a', { limit: 2, cursor: first.nextCursor ?? undefined })).accounts.map((a) => a.id)).toEqual([account(3).id]);
    // It can be deleted without being read.
    expect(await store.delete('env-a', account(2).id)).toBe(true);
    expect((await store.list('env-a', { limit: 10 })).accounts.map((a) => a.fault)).toEqual([undefined, undefined]);
    db.close();
  });

  it('marks a sealed value copied from another row (it is bound to its account id)', async () => {
    await seed(2);
    const raw = new Database(join(dir, DATABASE_FILE));
    const other = raw.prepare('SELECT sealed_context FROM integrated_accounts WHERE id = ?').pluck().get(account(1).id) as string;
    raw.close();
    tamper(2, 'sealed_context', () => other);
    const { db, box } = openDataDirectory(dir);
    const got = await new SqliteAccountStore(db, box).get('env-a', account(2).id);
    expect(got).toMatchObject({ fault: 'credentials_unreadable', context: {} });
    expect(JSON.stringify(got)).not.toMatch(/SECRET/);
    db.close();
  });

  it('a repaired row (written again) reads as usable', async () => {
    await seed(1);
    tamper(1, 'public_context', () => 'nope');
    const { db, box } = openDataDirectory(dir);
    const store = new SqliteAccountStore(db, box);
    const broken = (await store.get('env-a', account(1).id)) as StoredAccount;
    expect(broken.fault).toBe('public_context_unreadable');
    expect(await store.update({ ...account(1), updatedAt: '2026-02-01T00:00:00.000Z' })).toBe(true);
    expect(await store.get('env-a', account(1).id)).toMatchObject({ publicContext: account(1).publicContext });
    expect((await store.get('env-a', account(1).id))?.fault).toBeUndefined();
    db.close();
  });
});

describe('SqliteAccountStore after its keys were rotated by another connection', () => {
  it('keeps reading and writing after a master key rotation (its data key is unchanged), and the new key reads what it wrote', async () => {
    await seed(2);
    const running = openDataDirectory(dir); // a process that keeps running (an SDK program)
    const store = new SqliteAccountStore(running.db, running.box);
    const rotating = openDataDirectory(dir);
    rotateEncryptionKey(dir, rotating.db, rotating.box);
    rotating.db.close();
    expect((await store.list('env-a', { limit: 10 })).accounts.map((a) => a.fault)).toEqual([undefined, undefined]);
    await store.create(account(3));
    running.db.close();
    const after = openDataDirectory(dir);
    expect((await new SqliteAccountStore(after.db, after.box).get('env-a', account(3).id))?.context.password).toBe('SECRET-3');
    after.db.close();
  });

  it('after a master key rotation and then a data key rotation: reads key_changed, refuses to write with the old key (nothing written)', async () => {
    await seed(2);
    const running = openDataDirectory(dir); // a process that keeps running with the old master key
    const store = new SqliteAccountStore(running.db, running.box);
    expect((await store.get('env-a', account(1).id))?.fault).toBeUndefined();

    const rotating = openDataDirectory(dir);
    rotateEncryptionKey(dir, rotating.db, rotating.box);
    rotating.db.close();
    const rotated = openDataDirectory(dir);
    await rotateDataKey(new SqliteDataKeyTable(rotated.db, dir), openSqliteKeyring(rotated.db, rotated.box));
    rotated.db.close();

    expect((await store.list('env-a', { limit: 10 })).accounts.map((a) => a.fault)).toEqual(['key_changed', 'key_changed']);
    await expect(store.create(account(3))).rejects.toThrow(EncryptionKeyChangedError);
    await expect(store.update({ ...account(1), tenantId: 'moved' })).rejects.toThrow(EncryptionKeyChangedError);
    running.db.close();

    // The current key opens everything there is; the refused writes left nothing behind.
    const after = openDataDirectory(dir);
    const fresh = new SqliteAccountStore(after.db, after.box);
    expect((await fresh.list('env-a', { limit: 10 })).accounts.map((a) => [a.id, a.tenantId, a.fault, a.context.password])).toEqual([
      [account(1).id, 'tenant', undefined, 'SECRET-1'],
      [account(2).id, 'tenant', undefined, 'SECRET-2'],
    ]);
    await fresh.create(account(3));
    expect((await fresh.get('env-a', account(3).id))?.context.password).toBe('SECRET-3');
    after.db.close();
  });
});
