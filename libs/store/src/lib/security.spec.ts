import { InvalidCursorError, type StoredAccount } from '@unicrm/model';
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteAccountStore } from './account-store';
import { SqliteWebhookStore } from './connect-store';
import { openDataDirectory } from './data-directory';
import { DATABASE_FILE } from './database';
import { NEXT_KEY_FILE, rotateEncryptionKey } from './key-rotation';
import { openSqliteKeyring, SqliteDataKeyTable } from './data-keys';
import { rotateDataKey } from './keyring';
import { KEY_FILE } from './secret-box';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'unicrm-security-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const account = (n: number, extra: Partial<StoredAccount> = {}): StoredAccount => ({
  id: `00000000-0000-4000-8000-00000000000${n}`,
  environmentId: 'env-a',
  tenantId: `tenant-${n % 2}`,
  integration: 'pipeliner',
  status: 'active',
  context: { service_url: 'https://x.example', space_id: 's', username: `user-${n}`, password: `SECRET-${n}` },
  publicContext: { service_url: 'https://x.example', space_id: 's' },
  lastError: null,
  createdAt: `2026-01-0${n}T00:00:00.000Z`,
  updatedAt: `2026-01-0${n}T00:00:00.000Z`,
  ...extra,
});

/** @param legacy seal the contexts with the master key itself, as unicrm did before the keyring (`v1:`) */
async function seed(count: number, legacy = false): Promise<void> {
  const { db, box } = openDataDirectory(dir);
  const store = new SqliteAccountStore(db, box);
  for (let n = 1; n <= count; n++) await store.create(account(n));
  if (legacy) {
    for (let n = 1; n <= count; n++) {
      db.prepare('UPDATE integrated_accounts SET sealed_context = ? WHERE id = ?').run(box.seal(JSON.stringify(account(n).context), account(n).id), account(n).id);
    }
  }
  db.close();
}

async function readAll(): Promise<StoredAccount[]> {
  const { db, box } = openDataDirectory(dir);
  const store = new SqliteAccountStore(db, box);
  const all = (await store.list('env-a', { limit: 100 })).accounts;
  db.close();
  return all;
}

describe('master key rotation', () => {
  it('wraps the data key again under a new key file; the accounts (sealed with the data key) are not touched', async () => {
    await seed(3);
    const before = readFileSync(join(dir, KEY_FILE), 'utf8');
    const { db, box } = openDataDirectory(dir);
    const sealedBefore = db.prepare('SELECT sealed_context FROM integrated_accounts ORDER BY id').pluck().all();
    const wrappedBefore = db.prepare('SELECT wrapped FROM encryption_keys').pluck().all();
    expect(rotateEncryptionKey(dir, db, box)).toEqual({ dataKeys: 1, accounts: 0, webhooks: 0, keyLocation: join(dir, KEY_FILE) });
    expect(db.prepare('SELECT sealed_context FROM integrated_accounts ORDER BY id').pluck().all()).toEqual(sealedBefore);
    expect(db.prepare('SELECT wrapped FROM encryption_keys').pluck().all()).not.toEqual(wrappedBefore);
    db.close();
    expect(readFileSync(join(dir, KEY_FILE), 'utf8')).not.toBe(before);
    expect(existsSync(join(dir, NEXT_KEY_FILE))).toBe(false);
    expect((await readAll()).map((a) => a.context.password)).toEqual(['SECRET-1', 'SECRET-2', 'SECRET-3']);
  });

  it('re-seals with the data key the accounts written before the keyring (sealed with the master key itself)', async () => {
    await seed(3, true);
    const before = readFileSync(join(dir, KEY_FILE), 'utf8');
    const { db, box } = openDataDirectory(dir);
    expect(db.prepare("SELECT count(*) FROM integrated_accounts WHERE sealed_context LIKE 'v1:%'").pluck().get()).toBe(3);
    expect(rotateEncryptionKey(dir, db, box)).toEqual({ dataKeys: 1, accounts: 3, webhooks: 0, keyLocation: join(dir, KEY_FILE) });
    expect(db.prepare("SELECT count(*) FROM integrated_accounts WHERE sealed_context LIKE 'v2:%'").pluck().get()).toBe(3);
    db.close();
    expect(readFileSync(join(dir, KEY_FILE), 'utf8')).not.toBe(before);
    expect(existsSync(join(dir, NEXT_KEY_FILE))).toBe(false);
    expect((await readAll()).map((a) => a.context.password)).toEqual(['SECRET-1', 'SECRET-2', 'SECRET-3']);
  });

  it("seals the webhooks' signing secrets again with the new master key (they open afterwards)", async () => {
    const { db, box } = openDataDirectory(dir);
    const webhook = { id: 'wh-1', environmentId: 'env-a', targetUrl: 'https://hooks.example/in', eventTypes: [], isActive: true, secret: 'WEBHOOK-SECRET', createdAt: 'a', updatedAt: 'a' };
    await new SqliteWebhookStore(db, box).create(webhook);
    expect(rotateEncryptionKey(dir, db, box)).toMatchObject({ webhooks: 1 });
    db.close();
    const reopened = openDataDirectory(dir);
    expect((await new SqliteWebhookStore(reopened.db, reopened.box).get('env-a', 'wh-1'))?.secret).toBe('WEBHOOK-SECRET');
    reopened.db.close();
  });

  it('loses nothing when interrupted between two rows', async () => {
    await seed(3, true);
    const before = readFileSync(join(dir, KEY_FILE), 'utf8');
    const { db, box } = openDataDirectory(dir);
    const sealedBefore = db.prepare('SELECT sealed_context FROM integrated_accounts ORDER BY id').all();
    expect(() =>
      rotateEncryptionKey(dir, db, box, {
        beforeRow: (index) => {
          if (index === 1) throw new Error('power cut');
        },
      }),
    ).toThrow('power cut');
    expect(db.prepare('SELECT sealed_context FROM integrated_accounts ORDER BY id').all()).toEqual(sealedBefore);
    db.close();
    expect(readFileSync(join(dir, KEY_FILE), 'utf8')).toBe(before);
    expect(existsSync(join(dir, NEXT_KEY_FILE))).toBe(false);
    expect((await readAll()).map((a) => a.context.password)).toEqual(['SECRET-1', 'SECRET-2', 'SECRET-3']);
  });

  it('finishes a rotation that crashed after the commit, on the next start', async () => {
    await seed(2);
    const { db, box } = openDataDirectory(dir);
    expect(() =>
      rotateEncryptionKey(dir, db, box, {
        beforeSwap: () => {
          throw new Error('crash');
        },
      }),
    ).toThrow('crash');
    db.close();
    expect(existsSync(join(dir, NEXT_KEY_FILE))).toBe(true);
    expect((await readAll()).map((a) => a.context.password)).toEqual(['SECRET-1', 'SECRET-2']);
    expect(existsSync(join(dir, NEXT_KEY_FILE))).toBe(false);
  });

  it('rotates an environment key to the key the operator gives', async () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const opened = openDataDirectory(dir, oldKey.toString('base64'));
    await new SqliteAccountStore(opened.db, opened.box).create(account(1));
    expect(rotateEncryptionKey(dir, opened.db, opened.box, { newKey }).keyLocation).toBe('environment');
    opened.db.close();
    expect(() => openDataDirectory(dir, oldKey.toString('base64'))).toThrow('after `unicrm keys rotate --master --new-key`, the new one');
    const reopened = openDataDirectory(dir, newKey.toString('hex'));
    expect((await new SqliteAccountStore(reopened.db, reopened.box).get('env-a', account(1).id))?.context.password).toBe('SECRET-1');
    reopened.db.close();
  });
});

describe('a data key rotation by a process that still holds the old master key', () => {
  // `keys rotate` opened the directory (read the key file) before `keys rotate --master` replaced the key, and
  // activates its new data key after: wrapped with the old master key, it would seal every credential with a key that
  // nothing can unwrap any more (the old key file is gone), and retire the one that still opened them.
  it('refuses before activating a key, so every credential still opens with the new master key', async () => {
    await seed(3);
    const stale = openDataDirectory(dir);
    const keyring = openSqliteKeyring(stale.db, stale.box);
    const master = openDataDirectory(dir);
    rotateEncryptionKey(dir, master.db, master.box);
    master.db.close();
    const keysBefore = stale.db.prepare('SELECT kid, state FROM encryption_keys ORDER BY kid').all();
    const outcome = await rotateDataKey(new SqliteDataKeyTable(stale.db, dir), keyring).then(
      () => 'rotated',
      (error: Error) => error.message,
    );
    const keysAfter = stale.db.prepare('SELECT kid, state FROM encryption_keys ORDER BY kid').all();
    stale.db.close();
    const after = await readAll();
    expect(after.map((a) => [a.fault ?? null, a.context.password])).toEqual([
      [null, 'SECRET-1'],
      [null, 'SECRET-2'],
      [null, 'SECRET-3'],
    ]);
    expect(keysAfter).toEqual(keysBefore);
    expect(outcome).toContain('changed while this process was running; nothing was written');
  });
});

describe('tampering and listing', () => {
  it('detects a tampered ciphertext instead of decrypting it, and returns the account marked, not a throw', async () => {
    await seed(1);
    const raw = new Database(join(dir, DATABASE_FILE));
    const { sealed_context } = raw.prepare('SELECT sealed_context FROM integrated_accounts').get() as { sealed_context: string };
    const parts = sealed_context.split(':');
    const bytes = Buffer.from(parts[3] as string, 'base64');
    bytes[2] = (bytes[2] as number) ^ 0xff;
    raw.prepare('UPDATE integrated_accounts SET sealed_context = ?').run([parts[0], parts[1], parts[2], bytes.toString('base64')].join(':'));
    raw.close();
    const { db, box } = openDataDirectory(dir);
    const got = await new SqliteAccountStore(db, box).get('env-a', account(1).id);
    expect(got).toMatchObject({ id: account(1).id, fault: 'credentials_unreadable', context: {}, publicContext: account(1).publicContext });
    expect(JSON.stringify(got)).not.toContain('SECRET-1');
    db.close();
  });

  it('pages with a cursor and filters by tenant, status and integration', async () => {
    const { db, box } = openDataDirectory(dir);
    const store = new SqliteAccountStore(db, box);
    for (let n = 1; n <= 5; n++) await store.create(account(n, n === 5 ? { status: 'needs_reauth' } : {}));
    await store.create({ ...account(6), environmentId: 'env-b' });
    const first = await store.list('env-a', { limit: 2 });
    expect(first.accounts.map((a) => a.id.slice(-1))).toEqual(['1', '2']);
    const second = await store.list('env-a', { limit: 2, cursor: first.nextCursor ?? undefined });
    expect(second.accounts.map((a) => a.id.slice(-1))).toEqual(['3', '4']);
    const third = await store.list('env-a', { limit: 2, cursor: second.nextCursor ?? undefined });
    expect(third).toMatchObject({ nextCursor: null });
    expect(third.accounts.map((a) => a.id.slice(-1))).toEqual(['5']);
    expect((await store.list('env-a', { limit: 10, tenantId: 'tenant-1' })).accounts.map((a) => a.id.slice(-1))).toEqual(['1', '3', '5']);
    expect((await store.list('env-a', { limit: 10, status: 'needs_reauth' })).accounts).toHaveLength(1);
    expect((await store.list('env-a', { limit: 10, integration: 'hubspot' })).accounts).toHaveLength(0);
    await expect(store.list('env-a', { limit: 2, cursor: 'garbage' })).rejects.toThrow(InvalidCursorError);
    await expect(store.list('env-a', { limit: 2, cursor: Buffer.from('[1,2]').toString('base64url') })).rejects.toThrow(InvalidCursorError);
    db.close();
  });

  it('sees a change another connection made (the decrypted-context cache follows the ciphertext)', async () => {
    const a = openDataDirectory(dir);
    const reader = new SqliteAccountStore(a.db, a.box);
    await reader.create(account(1));
    expect((await reader.get('env-a', account(1).id))?.context.password).toBe('SECRET-1');
    const b = openDataDirectory(dir);
    await new SqliteAccountStore(b.db, b.box).update({ ...account(1), context: { ...account(1).context, password: 'ROTATED' } });
    b.db.close();
    expect((await reader.get('env-a', account(1).id))?.context.password).toBe('ROTATED');
    a.db.close();
  });
});
