import type { StoredAccount } from '@unicrm/model';
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteAccountStore } from './account-store';
import { DATABASE_FILE, openDatabase } from './database';
import { loadEncryptionKey, SecretBox } from './secret-box';
import { SqliteApiTokenStore } from './token-store';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'unicrm-store-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const account = (id: string): StoredAccount => ({
  id,
  environmentId: 'env-a',
  tenantId: 'acme',
  integration: 'pipeliner',
  status: 'active',
  context: { service_url: 'https://x.example', space_id: 's', username: 'TOKEN-SECRET', password: 'PASSWORD-SECRET' },
  publicContext: { service_url: 'https://x.example', space_id: 's' },
  lastError: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
});

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));

  it('round-trips and uses a fresh IV each time', () => {
    const a = box.seal('secret', 'id-1');
    const b = box.seal('secret', 'id-1');
    expect(a).not.toBe(b);
    expect(box.open(a, 'id-1')).toBe('secret');
  });

  it('refuses another AAD, another key and an altered ciphertext', () => {
    const sealed = box.seal('secret', 'id-1');
    expect(() => box.open(sealed, 'id-2')).toThrow();
    expect(() => new SecretBox(randomBytes(32)).open(sealed, 'id-1')).toThrow();
    const parts = sealed.split(':');
    const altered = Buffer.from(parts[3] as string, 'base64');
    altered[0] = (altered[0] as number) ^ 1;
    expect(() => box.open([parts[0], parts[1], parts[2], altered.toString('base64')].join(':'), 'id-1')).toThrow();
  });

  it('wants a 32-byte key', () => {
    expect(() => new SecretBox(randomBytes(16))).toThrow('32 bytes');
  });
});

describe('loadEncryptionKey', () => {
  it('creates a 0600 key file once and reads the same key later', () => {
    const first = loadEncryptionKey(dir);
    expect(statSync(join(dir, 'encryption.key')).mode & 0o777).toBe(0o600);
    expect(loadEncryptionKey(dir).equals(first)).toBe(true);
  });

  it('takes hex or base64 from the environment and rejects anything else', () => {
    const key = randomBytes(32);
    expect(loadEncryptionKey(dir, key.toString('hex')).equals(key)).toBe(true);
    expect(loadEncryptionKey(dir, key.toString('base64')).equals(key)).toBe(true);
    expect(() => loadEncryptionKey(dir, 'short')).toThrow('UNICRM_ENCRYPTION_KEY must be 32 bytes');
  });
});

describe('openDatabase', () => {
  it('creates a data directory only its owner can enter', () => {
    const fresh = join(dir, 'new-data-dir');
    openDatabase(fresh, new SecretBox(randomBytes(32))).close();
    expect(statSync(fresh).mode & 0o777).toBe(0o700);
  });

  it('uses WAL and refuses a different key with a clear message', () => {
    const db = openDatabase(dir, new SecretBox(randomBytes(32)));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(statSync(join(dir, DATABASE_FILE)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, `${DATABASE_FILE}-wal`)).mode & 0o777).toBe(0o600);
    db.close();
    expect(() => openDatabase(dir, new SecretBox(randomBytes(32)))).toThrow('encryption key does not match');
  });
});

describe('SqliteAccountStore', () => {
  it('stores accounts with the context encrypted and hides them from other environments', async () => {
    const box = new SecretBox(randomBytes(32));
    const db = openDatabase(dir, box);
    const store = new SqliteAccountStore(db, box);
    await store.create(account('a1'));
    expect(await store.get('env-a', 'a1')).toEqual(account('a1'));
    expect(await store.get('env-b', 'a1')).toBeUndefined();
    db.close();

    const raw = new Database(join(dir, DATABASE_FILE), { readonly: true });
    const dump = JSON.stringify(raw.prepare('SELECT * FROM integrated_accounts').all());
    raw.close();
    expect(dump).not.toContain('TOKEN-SECRET');
    expect(dump).not.toContain('PASSWORD-SECRET');
    expect(readFileSync(join(dir, DATABASE_FILE)).includes('PASSWORD-SECRET')).toBe(false);
  });

  it('updates the status and deletes only in the right environment', async () => {
    const box = new SecretBox(randomBytes(32));
    const db = openDatabase(dir, box);
    const store = new SqliteAccountStore(db, box);
    await store.create(account('a2'));
    const changed = { ...account('a2'), tenantId: 'other', context: { ...account('a2').context, password: 'NEW' } };
    expect(await store.update(changed)).toBe(true);
    expect(await store.get('env-a', 'a2')).toEqual(changed);
    expect(await store.update({ ...changed, environmentId: 'env-b' })).toBe(false);
    await store.setStatus('env-a', 'a2', 'needs_reauth', 'Pipeliner answered 401', '2026-02-01T00:00:00.000Z');
    expect(await store.get('env-a', 'a2')).toMatchObject({ status: 'needs_reauth', lastError: 'Pipeliner answered 401' });
    expect(await store.delete('env-b', 'a2')).toBe(false);
    expect(await store.delete('env-a', 'a2')).toBe(true);
    expect(await store.get('env-a', 'a2')).toBeUndefined();
    db.close();
  });
});

describe('SqliteApiTokenStore', () => {
  it('finds tokens by hash only', async () => {
    const box = new SecretBox(randomBytes(32));
    const db = openDatabase(dir, box);
    const tokens = new SqliteApiTokenStore(db);
    const hash = randomBytes(32);
    expect(await tokens.count()).toBe(0);
    const record = { id: 't1', name: 'first', environmentId: 'default', createdAt: '2026-01-01T00:00:00.000Z', expiresAt: '2027-01-01T00:00:00.000Z', revokedAt: null };
    await tokens.add(record, hash);
    expect(await tokens.findByHash(hash)).toEqual(record);
    expect(await tokens.findByHash(randomBytes(32))).toBeUndefined();
    expect(await tokens.count()).toBe(1);
    expect(await tokens.revoke('t1', '2026-02-01T00:00:00.000Z')).toBe(true);
    expect(await tokens.revoke('t1', '2026-03-01T00:00:00.000Z')).toBe(false);
    expect(await tokens.list()).toEqual([{ ...record, revokedAt: '2026-02-01T00:00:00.000Z' }]);
    db.close();
  });
});
