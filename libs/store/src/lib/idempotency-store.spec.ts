import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATABASE_FILE, openDatabase, SCHEMA_VERSION } from './database';
import { SqliteIdempotencyStore } from './idempotency-store';
import { SecretBox } from './secret-box';

// Issue 12: an in-flight key is held by a claim token under a lease; every later write is conditional on the token.

let dir: string;
let dbs: Database.Database[];
const box = new SecretBox(randomBytes(32));
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'unicrm-idem-store-'));
  dbs = [];
});
afterEach(() => {
  for (const db of dbs) db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A store on its own connection to the same file: what another process sees. */
function connect(): SqliteIdempotencyStore {
  const db = openDatabase(dir, box);
  dbs.push(db);
  return new SqliteIdempotencyStore(db);
}

const T0 = '2026-06-01T00:00:00.000Z';
const LEASE_END = '2026-06-01T00:00:30.000Z';
const AFTER_LEASE = '2026-06-01T00:00:31.000Z';
const TTL_END = '2026-06-02T00:00:00.000Z';
const answer = { statusCode: 201, body: '{"id":"s1"}', rawText: null, headers: {} };

describe('SqliteIdempotencyStore', () => {
  it('records the holder of a claim and its lease', async () => {
    const store = connect();
    expect(await store.claim('k', 'f', T0, TTL_END, { token: 'owner', expiresAt: LEASE_END })).toBeUndefined();
    expect(await store.claim('k', 'f', T0, TTL_END, { token: 'other', expiresAt: LEASE_END })).toMatchObject({
      state: 'in_flight',
      claimToken: 'owner',
      leaseExpiresAt: LEASE_END,
      createdAt: T0,
    });
  });

  it('lets exactly one of two processes take over an abandoned key (both read the same token)', async () => {
    const first = connect();
    const second = connect();
    await first.claim('k', 'f', T0, TTL_END, { token: 'dead', expiresAt: LEASE_END });
    const seenByFirst = await first.claim('k', 'f', AFTER_LEASE, TTL_END, { token: 'a', expiresAt: TTL_END });
    const seenBySecond = await second.claim('k', 'f', AFTER_LEASE, TTL_END, { token: 'b', expiresAt: TTL_END });
    expect(seenByFirst?.claimToken).toBe('dead');
    expect(seenBySecond?.claimToken).toBe('dead');
    const wins = [
      await first.takeOver('k', 'dead', { token: 'a', expiresAt: TTL_END }, AFTER_LEASE),
      await second.takeOver('k', 'dead', { token: 'b', expiresAt: TTL_END }, AFTER_LEASE),
    ];
    expect(wins).toEqual([true, false]);
    expect(await second.claim('k', 'f', AFTER_LEASE, TTL_END, { token: 'c', expiresAt: TTL_END })).toMatchObject({ state: 'in_flight', claimToken: 'a', createdAt: T0 });
  });

  it('does not take over a key whose lease has not ended', async () => {
    const store = connect();
    await store.claim('k', 'f', T0, TTL_END, { token: 'live', expiresAt: LEASE_END });
    expect(await store.takeOver('k', 'live', { token: 'x', expiresAt: TTL_END }, T0)).toBe(false);
    // Renewed by its holder: still live after the first lease would have ended.
    expect(await store.renew([{ scope: 'k', token: 'live' }], '2026-06-01T00:01:00.000Z')).toBe(1);
    expect(await store.takeOver('k', 'live', { token: 'x', expiresAt: TTL_END }, AFTER_LEASE)).toBe(false);
  });

  it('takes over an ambiguous key whatever its lease, once', async () => {
    const store = connect();
    await store.claim('k', 'f', T0, TTL_END, { token: 'owner', expiresAt: TTL_END });
    expect(await store.markAmbiguous('k', 'owner', '2026-06-01T00:00:05.000Z')).toBe(true);
    expect(await store.takeOver('k', 'owner', { token: 'retry', expiresAt: TTL_END }, '2026-06-01T00:00:06.000Z')).toBe(true);
    expect(await store.takeOver('k', 'owner', { token: 'again', expiresAt: TTL_END }, '2026-06-01T00:00:06.000Z')).toBe(false);
  });

  it('refuses every write of a holder that lost the key (a late owner cannot overwrite its successor)', async () => {
    const store = connect();
    await store.claim('k', 'f', T0, TTL_END, { token: 'late', expiresAt: LEASE_END });
    expect(await store.takeOver('k', 'late', { token: 'new', expiresAt: TTL_END }, AFTER_LEASE)).toBe(true);
    expect(await store.complete('k', 'late', { ...answer, body: '{"id":"s2"}' })).toBe(false);
    expect(await store.markAmbiguous('k', 'late', AFTER_LEASE)).toBe(false);
    expect(await store.release('k', 'late')).toBe(false);
    expect(await store.renew([{ scope: 'k', token: 'late' }], TTL_END)).toBe(0);
    expect(await store.complete('k', 'new', answer)).toBe(true);
    expect(await store.claim('k', 'f', AFTER_LEASE, TTL_END, { token: 'x', expiresAt: TTL_END })).toMatchObject({ state: 'done', body: '{"id":"s1"}', claimToken: 'new' });
    // A done record is neither renewed nor taken over.
    expect(await store.renew([{ scope: 'k', token: 'new' }], TTL_END)).toBe(0);
    expect(await store.takeOver('k', 'new', { token: 'y', expiresAt: TTL_END }, TTL_END)).toBe(false);
    expect(await store.release('k', 'new')).toBe(true);
  });

  it('gives records of the previous schema a token and an ended lease (their process is gone)', async () => {
    // The database as the previous version left it: migrations 1-3, an in-flight record.
    const path = join(dir, DATABASE_FILE);
    const fresh = openDatabase(dir, box);
    fresh.exec('DROP TABLE idempotency_records');
    // Issue 17's tables (migration 5) did not exist either.
    fresh.exec('DROP TABLE webhook_attempts; DROP TABLE webhook_deliveries; DROP TABLE webhook_events; DROP TABLE webhooks; DROP TABLE link_tokens;');
    fresh.exec(`CREATE TABLE idempotency_records (
       scope TEXT PRIMARY KEY, state TEXT NOT NULL, fingerprint TEXT NOT NULL, status_code INTEGER, body TEXT, raw_text TEXT,
       headers TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL, expires_at TEXT NOT NULL)`);
    fresh.prepare(`INSERT INTO idempotency_records (scope, state, fingerprint, created_at, expires_at) VALUES ('old', 'in_flight', 'f', ?, ?)`).run(T0, TTL_END);
    fresh.exec('DROP TABLE encryption_keys'); // added by migration 5
    fresh.pragma('user_version = 3');
    fresh.close();
    const store = connect();
    const record = await store.claim('old', 'f', AFTER_LEASE, TTL_END, { token: 'x', expiresAt: TTL_END });
    expect(record).toMatchObject({ state: 'in_flight', leaseExpiresAt: T0 });
    expect(record?.claimToken).toMatch(/^[0-9a-f]{32}$/);
    const reader = new Database(path, { readonly: true });
    dbs.push(reader);
    expect(reader.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
  });
});
