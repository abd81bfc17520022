/**
 * One store conformance suite, run against both backends (issue 14 item 1): SQLite (a data directory) and
 * PostgreSQL (a throwaway cluster, a new database per test). "Two nodes" are two store sets opened on the same
 * storage: two SQLite connections to one file, two pools on one PostgreSQL database.
 */
import { type LinkTokenStore, type OutboxEvent, type StoredWebhook, type WebhookStore } from '@unicrm/model';
import { EncryptionKeyChangedError, type IdempotencyStore, InvalidCursorError, type AccountLocks, type AccountStore, type ApiTokenStore, type RateLimitCounterStore, type StoredAccount } from '@unicrm/model';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { postgresAvailable, startTestCluster, type TestCluster } from '../testing/postgres-cluster';
import { SqliteAccountStore } from './account-store';
import { SqliteLinkTokenStore, SqliteWebhookStore } from './connect-store';
import { openSqliteKeyring, SqliteDataKeyTable } from './data-keys';
import { type DataKeyTable, Keyring, kidOf, rotateDataKey, RotationInProgressError } from './keyring';
import { openDatabase } from './database';
import { SqliteIdempotencyStore } from './idempotency-store';
import {
  PostgresAccountLocks,
  PostgresAccountStore,
  PostgresApiTokenStore,
  PostgresDatabase,
  PostgresDataKeyTable,
  PostgresIdempotencyStore,
  PostgresLinkTokenStore,
  PostgresRateLimitStore,
  PostgresWebhookStore,
} from './postgres';
import { SecretBox } from './secret-box';
import { SqliteApiTokenStore } from './token-store';

interface Node {
  accounts: AccountStore;
  tokens: ApiTokenStore;
  idempotency: IdempotencyStore;
  linkTokens: LinkTokenStore;
  webhooks: WebhookStore;
  /** Shared rate-limit counters: PostgreSQL only (on SQLite each process counts its own). */
  rateLimits?: RateLimitCounterStore;
  /** Locks across nodes: PostgreSQL only. */
  locks?: AccountLocks;
}

interface Storage {
  /** Opens one more node on the storage (same key unless `box` is given). */
  node(box?: SecretBox): Promise<Node>;
  /** Runs SQL on the storage directly (tests that alter a row as an attacker or a bug would). */
  exec(sql: string): Promise<void>;
  /** Reads with SQL on the storage directly. */
  rows<R>(sql: string): Promise<R[]>;
  /** What `keys rotate` uses, on one more connection (same key unless `box` is given). */
  rotation(b?: SecretBox): Promise<{ table: DataKeyTable; keyring: Keyring }>;
  close(): Promise<void>;
}

interface Backend {
  name: string;
  /** Whether it can run here (PostgreSQL: installed). */
  available: () => boolean;
  setUp?: () => Promise<void>;
  tearDown?: () => Promise<void>;
  /** New, empty storage. */
  storage(box: SecretBox): Promise<Storage>;
}

const sqlite: Backend = {
  name: 'SQLite',
  available: () => true,
  async storage(box) {
    const dir = mkdtempSync(join(tmpdir(), 'unicrm-conformance-'));
    const dbs: ReturnType<typeof openDatabase>[] = [];
    const open = (b: SecretBox, verifyKey = false) => {
      const db = openDatabase(dir, b, { verifyKey });
      dbs.push(db);
      return db;
    };
    open(box, true); // writes the key check with the storage's key
    return {
      async node(b = box) {
        const db = open(b);
        return {
          accounts: new SqliteAccountStore(db, b),
          tokens: new SqliteApiTokenStore(db),
          idempotency: new SqliteIdempotencyStore(db),
          linkTokens: new SqliteLinkTokenStore(db),
          webhooks: new SqliteWebhookStore(db, b),
        };
      },
      async exec(sql) {
        (dbs[0] as ReturnType<typeof openDatabase>).exec(sql);
      },
      async rows<R>(sql: string) {
        return (dbs[0] as ReturnType<typeof openDatabase>).prepare(sql).all() as R[];
      },
      async rotation(b = box) {
        const db = open(b);
        return { table: new SqliteDataKeyTable(db, dir), keyring: openSqliteKeyring(db, b) };
      },
      async close() {
        for (const db of dbs) db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

let cluster: TestCluster | undefined;
const postgres: Backend = {
  name: 'PostgreSQL',
  available: () => postgresAvailable(),
  async setUp() {
    cluster = await startTestCluster();
  },
  async tearDown() {
    await cluster?.stop();
  },
  async storage(box) {
    const admin = new Client({ connectionString: cluster?.url });
    await admin.connect();
    const name = `c_${randomUUID().replace(/-/g, '')}`;
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = (cluster as TestCluster).url.replace(/\/postgres$/, `/${name}`);
    const databases: PostgresDatabase[] = [];
    const first = new PostgresDatabase(box, { url, changePollMs: 100 });
    databases.push(first);
    await first.started;
    return {
      async node(b = box) {
        const db = new PostgresDatabase(b, { url, changePollMs: 100 });
        databases.push(db);
        await db.started.catch(() => undefined);
        return {
          accounts: new PostgresAccountStore(db, b),
          tokens: new PostgresApiTokenStore(db),
          idempotency: new PostgresIdempotencyStore(db),
          linkTokens: new PostgresLinkTokenStore(db),
          webhooks: new PostgresWebhookStore(db, b),
          rateLimits: new PostgresRateLimitStore(db),
          locks: new PostgresAccountLocks(db),
        };
      },
      async exec(sql) {
        await first.pool.query(sql);
      },
      async rows<R>(sql: string) {
        return (await first.pool.query(sql)).rows as R[];
      },
      async rotation(b = box) {
        const db = new PostgresDatabase(b, { url, changePollMs: 100 });
        databases.push(db);
        await db.started;
        return { table: new PostgresDataKeyTable(db), keyring: new Keyring(b) };
      },
      async close() {
        for (const db of databases) await db.close();
      },
    };
  },
};

const account = (id: string, over: Partial<StoredAccount> = {}): StoredAccount => ({
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
  ...over,
});

/** Waits until `check` is true, polling every 20 ms; fails after `boundMs` (a bound with a wide margin, not a speed). */
async function eventually(check: () => boolean | Promise<boolean>, boundMs: number): Promise<void> {
  const end = Date.now() + boundMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not true within ${boundMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const lease = (token: string, expiresAt: string) => ({ token, expiresAt });

const webhook = (id: string, over: Partial<StoredWebhook> = {}): StoredWebhook => ({
  id,
  environmentId: 'env-a',
  targetUrl: 'https://hooks.example/in',
  eventTypes: [],
  isActive: true,
  secret: `secret-of-${id}`,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  ...over,
});

const accountEvent = (id: string, event: OutboxEvent['event'], over: Partial<OutboxEvent> = {}): OutboxEvent => ({
  id,
  environmentId: 'env-a',
  event,
  payload: { id: 'acc-1' },
  createdAt: '2026-01-01T00:00:00.000Z',
  ...over,
});

const linkToken = (over: Record<string, unknown> = {}) => ({
  environmentId: 'env-a',
  tenantId: 'acme',
  integratedAccountId: null,
  integration: null,
  redirectUri: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  expiresAt: '2026-01-01T00:15:00.000Z',
  usedAt: null,
  ...over,
});

for (const backend of [sqlite, postgres]) {
  const describeIf = backend.available() ? describe : describe.skip;
  describeIf(`store conformance: ${backend.name}`, () => {
    const box = new SecretBox(randomBytes(32));
    let storage: Storage;
    let a: Node;
    let b: Node;
    beforeAll(async () => backend.setUp?.());
    afterAll(async () => backend.tearDown?.());
    beforeEach(async () => {
      storage = await backend.storage(box);
      a = await storage.node();
      b = await storage.node();
    });
    afterEach(async () => storage.close());

    describe('accounts', () => {
      it('stores, reads (secrets decrypted) and scopes by environment', async () => {
        await a.accounts.create(account('acc-1'));
        const read = await b.accounts.get('env-a', 'acc-1');
        expect(read).toEqual(account('acc-1'));
        expect(await b.accounts.get('env-b', 'acc-1')).toBeUndefined();
        expect(await b.accounts.get('env-a', 'nope')).toBeUndefined();
      });

      it('lists oldest first in pages, with filters, and refuses a cursor it did not make', async () => {
        await a.accounts.create(account('acc-3', { createdAt: '2026-01-03T00:00:00.000Z' }));
        await a.accounts.create(account('acc-1', { createdAt: '2026-01-01T00:00:00.000Z' }));
        await a.accounts.create(account('acc-2', { createdAt: '2026-01-02T00:00:00.000Z', tenantId: 'other', status: 'needs_reauth' }));
        const first = await b.accounts.list('env-a', { limit: 2 });
        expect(first.accounts.map((x) => x.id)).toEqual(['acc-1', 'acc-2']);
        expect(first.nextCursor).not.toBeNull();
        const second = await b.accounts.list('env-a', { limit: 2, cursor: first.nextCursor as string });
        expect(second.accounts.map((x) => x.id)).toEqual(['acc-3']);
        expect(second.nextCursor).toBeNull();
        expect((await b.accounts.list('env-a', { limit: 10, tenantId: 'other' })).accounts.map((x) => x.id)).toEqual(['acc-2']);
        expect((await b.accounts.list('env-a', { limit: 10, status: 'active' })).accounts.map((x) => x.id)).toEqual(['acc-1', 'acc-3']);
        expect((await b.accounts.list('env-a', { limit: 10, integration: 'hubspot' })).accounts).toEqual([]);
        await expect(b.accounts.list('env-a', { limit: 10, cursor: 'not-a-cursor' })).rejects.toBeInstanceOf(InvalidCursorError);
      });

      it('updates, sets a status only if unchanged since, and deletes', async () => {
        await a.accounts.create(account('acc-1'));
        const next = account('acc-1', { tenantId: 'new', context: { ...account('x').context, password: 'NEW' }, updatedAt: '2026-01-05T00:00:00.000Z' });
        expect(await b.accounts.update(next)).toBe(true);
        expect(await b.accounts.update(account('missing'))).toBe(false);
        expect((await a.accounts.get('env-a', 'acc-1'))?.context.password).toBe('NEW');
        await a.accounts.setStatus('env-a', 'acc-1', 'needs_reauth', 'stale', '2026-01-06T00:00:00.000Z', '2026-01-01T00:00:00.000Z');
        expect((await a.accounts.get('env-a', 'acc-1'))?.status).toBe('active');
        await a.accounts.setStatus('env-a', 'acc-1', 'needs_reauth', 'rejected', '2026-01-06T00:00:00.000Z', '2026-01-05T00:00:00.000Z');
        expect(await b.accounts.get('env-a', 'acc-1')).toMatchObject({ status: 'needs_reauth', lastError: 'rejected' });
        expect(await a.accounts.delete('env-a', 'acc-1')).toBe(true);
        expect(await a.accounts.delete('env-a', 'acc-1')).toBe(false);
        expect(await b.accounts.get('env-a', 'acc-1')).toBeUndefined();
      });

      it('keeps secrets sealed at rest and lists an altered row with a fault instead of failing', async () => {
        await a.accounts.create(account('acc-1'));
        await a.accounts.create(account('acc-2', { createdAt: '2026-01-02T00:00:00.000Z' }));
        await storage.exec(`UPDATE integrated_accounts SET sealed_context = 'v1:AAAA:BBBB:CCCC' WHERE id = 'acc-1'`);
        await storage.exec(`UPDATE integrated_accounts SET public_context = 'not json' WHERE id = 'acc-2'`);
        const page = await b.accounts.list('env-a', { limit: 10 });
        expect(page.accounts.map((x) => [x.id, x.fault])).toEqual([
          ['acc-1', 'credentials_unreadable'],
          ['acc-2', 'public_context_unreadable'],
        ]);
        expect(JSON.stringify(page.accounts[0])).not.toContain('PASSWORD-SECRET');
      });

      it('refuses to write with a key that no longer opens the storage (nothing written)', async () => {
        const other = await storage.node(new SecretBox(randomBytes(32)));
        await expect(other.accounts.create(account('acc-9'))).rejects.toThrow(backend.name === 'SQLite' ? EncryptionKeyChangedError : /encryption key does not match/);
        expect(await a.accounts.get('env-a', 'acc-9')).toBeUndefined();
      });
    });

    describe('online data key rotation', () => {
      const ids = Array.from({ length: 7 }, (_, i) => `acc-${i}`);
      const keys = () => storage.rows<{ kid: string; state: string; wrapped: string | null }>('SELECT kid, state, wrapped FROM ' + (backend.name === 'SQLite' ? 'encryption_keys' : 'unicrm_encryption_keys') + ' ORDER BY created_at, kid');
      const sealedKids = async () => (await storage.rows<{ sealed_context: string }>('SELECT sealed_context FROM integrated_accounts ORDER BY id')).map((row) => kidOf(row.sealed_context));
      const passwords = async (node: Node) => (await node.accounts.list('env-a', { limit: 50 })).accounts.map((x) => [x.id, x.fault, x.context.password]);

      it('makes a new data key, re-seals every account in batches, retires the old key; nodes that loaded the old one read and write on', async () => {
        for (const id of ids) await a.accounts.create(account(id, { context: { ...account(id).context, password: `PW-${id}` } }));
        expect(await passwords(b)).toHaveLength(7); // b has loaded the first key
        const [first] = await keys();
        const { table, keyring } = await storage.rotation();
        const progress: number[] = [];
        const result = await rotateDataKey(table, keyring, { batchSize: 3, onProgress: (p) => progress.push(p.resealed) });
        expect(result).toEqual({ activeKid: expect.stringMatching(/^[0-9a-f]{12}$/), resumed: false, resealed: 7, retired: [first?.kid], unreadable: [] });
        expect(progress).toEqual([3, 6, 7]);
        expect(await keys()).toEqual([
          { kid: first?.kid, state: 'retired', wrapped: null },
          { kid: result.activeKid, state: 'active', wrapped: expect.stringMatching(/^v1:/) },
        ]);
        expect(new Set(await sealedKids())).toEqual(new Set([result.activeKid]));
        // b meets values sealed with a key it has not loaded: it loads the table again.
        expect(await passwords(b)).toEqual(ids.map((id) => [id, undefined, `PW-${id}`]));
        // b's first key is retired: its write is sealed again with the active key.
        await b.accounts.create(account('acc-b'));
        expect(await b.accounts.update({ ...account('acc-0'), tenantId: 'moved' })).toBe(true);
        expect((await sealedKids()).every((kid) => kid === result.activeKid)).toBe(true);
        expect((await a.accounts.get('env-a', 'acc-0'))?.tenantId).toBe('moved');
      });

      it('resumes an interrupted rotation: nothing is lost meanwhile, the rerun finishes it with the same key', async () => {
        for (const id of ids) await a.accounts.create(account(id));
        const [first] = await keys();
        const { table, keyring } = await storage.rotation();
        await expect(
          rotateDataKey(table, keyring, {
            batchSize: 2,
            beforeBatch: (index) => {
              if (index === 2) throw new Error('killed');
            },
          }),
        ).rejects.toThrow('killed');
        const midway = await keys();
        expect(midway.map((k) => k.state)).toEqual(['previous', 'active']);
        const active = midway[1]?.kid;
        const kids = await sealedKids();
        expect(kids.filter((kid) => kid === active)).toHaveLength(4);
        expect(kids.filter((kid) => kid === first?.kid)).toHaveLength(3);
        // Every node reads every account meanwhile, and writes with the new key.
        expect((await passwords(b)).every(([, fault, pw]) => fault === undefined && pw === 'PASSWORD-SECRET')).toBe(true);
        await b.accounts.create(account('acc-new'));

        const again = await storage.rotation();
        const result = await rotateDataKey(again.table, again.keyring, { batchSize: 2 });
        expect(result).toMatchObject({ activeKid: active, resumed: true, resealed: 3, retired: [first?.kid], unreadable: [] });
        expect(new Set(await sealedKids())).toEqual(new Set([active]));
        expect((await passwords(a)).every(([, fault, pw]) => fault === undefined && pw === 'PASSWORD-SECRET')).toBe(true);
      });

      it('loses no write made while it runs: the old key is retired only once no value names it', async () => {
        for (const id of ids) await a.accounts.create(account(id));
        const { table, keyring } = await storage.rotation();
        let n = 0;
        const writes: Promise<unknown>[] = [];
        const result = await rotateDataKey(table, keyring, {
          batchSize: 1,
          // Between batches, the other nodes write: updates of rows not re-sealed yet and of re-sealed ones, creates.
          beforeBatch: async () => {
            const i = n++;
            writes.push(b.accounts.update({ ...account(`acc-${(i * 3) % 7}`), tenantId: `t${i}` }), a.accounts.create(account(`late-${i}`)));
            await Promise.all(writes);
          },
        });
        await Promise.all(writes);
        expect(result.retired).toHaveLength(1);
        expect(result.unreadable).toEqual([]);
        expect(new Set(await sealedKids())).toEqual(new Set([result.activeKid]));
        const all = (await a.accounts.list('env-a', { limit: 100 })).accounts;
        expect(all.length).toBe(7 + n);
        expect(all.every((x) => x.fault === undefined && x.context.password === 'PASSWORD-SECRET')).toBe(true);
      });

      it('re-seals values sealed with the master key before the keyring, and reports (and keeps the key of) a value that opens with no key', async () => {
        await a.accounts.create(account('acc-old'));
        await a.accounts.create(account('acc-bad'));
        const legacy = box.seal(JSON.stringify(account('acc-old').context), 'acc-old');
        await storage.exec(`UPDATE integrated_accounts SET sealed_context = '${legacy}' WHERE id = 'acc-old'`);
        const [first] = await keys();
        // A value altered: it names the first key but opens with no key.
        await storage.exec(`UPDATE integrated_accounts SET sealed_context = 'v2:${first?.kid}:AAAA:AAAA:AAAA' WHERE id = 'acc-bad'`);
        const { table, keyring } = await storage.rotation();
        const result = await rotateDataKey(table, keyring);
        expect(result).toMatchObject({ resealed: 1, retired: [], unreadable: ['acc-bad'] });
        expect((await keys()).map((k) => [k.kid, k.state])).toEqual([
          [first?.kid, 'previous'],
          [result.activeKid, 'active'],
        ]);
        expect((await a.accounts.get('env-a', 'acc-old'))?.context.password).toBe('PASSWORD-SECRET');
        // Once the bad account is gone, a rerun finishes: the old key is retired.
        await a.accounts.delete('env-a', 'acc-bad');
        const again = await storage.rotation();
        expect(await rotateDataKey(again.table, again.keyring)).toMatchObject({ activeKid: result.activeKid, resumed: true, resealed: 0, retired: [first?.kid], unreadable: [] });
      });

      if (backend.name === 'PostgreSQL') it("makes the activation wait for a write under way with the old key, and refuses that key's writes after it", async () => {
        const [first] = await keys();
        const { table, keyring } = await storage.rotation();
        const client = new Client({ connectionString: (cluster as TestCluster).url.replace(/\/postgres$/, `/${(await storage.rows<{ d: string }>('SELECT current_database() AS d'))[0]?.d}`) });
        await client.connect();
        try {
          const write = `INSERT INTO integrated_accounts (id, environment_id, tenant_id, integration, status, public_context, sealed_context, created_at, updated_at)
            SELECT $1, 'env-a', 't', 'pipeliner', 'active', '{}', 'v2:' || $2 || ':x', 'a', 'a'
            WHERE EXISTS (SELECT 1 FROM unicrm_encryption_keys WHERE kid = $2 AND state = 'active' FOR SHARE)`;
          await client.query('BEGIN');
          expect((await client.query(write, ['in-flight', first?.kid])).rowCount).toBe(1);
          let activated = false;
          const activation = table.activate({ kid: 'aaaaaaaaaaaa', wrapped: 'w', created_at: '9999' }, keyring.master).then(() => (activated = true));
          await new Promise((resolve) => setTimeout(resolve, 300));
          expect(activated).toBe(false); // waits for the write's share lock
          await client.query('COMMIT');
          await activation;
          expect((await client.query(write, ['too-late', first?.kid])).rowCount).toBe(0);
          expect((await storage.rows<{ id: string }>("SELECT id FROM integrated_accounts WHERE id IN ('in-flight', 'too-late')")).map((r) => r.id)).toEqual(['in-flight']);
        } finally {
          await client.end();
        }
      });

      it('refuses a second rotation while one runs (nothing changed by the second)', async () => {
        await a.accounts.create(account('acc-1'));
        const one = await storage.rotation();
        const two = await storage.rotation();
        let release: () => void = () => undefined;
        const held = new Promise<void>((resolve) => (release = resolve));
        const running = rotateDataKey(one.table, one.keyring, { beforeBatch: () => held });
        await eventually(async () => (await keys()).length === 2, 5_000);
        await expect(rotateDataKey(two.table, two.keyring)).rejects.toThrow(RotationInProgressError);
        expect((await keys()).map((k) => k.state)).toEqual(['previous', 'active']);
        release();
        expect((await running).retired).toHaveLength(1);
      });
    });

    describe('API tokens', () => {
      it('adds, finds by hash, lists oldest first, revokes once and counts', async () => {
        const hash = randomBytes(32);
        await a.tokens.add({ id: 't2', name: 'two', environmentId: 'env-a', createdAt: '2026-01-02T00:00:00.000Z', expiresAt: null, revokedAt: null }, randomBytes(32));
        await a.tokens.add({ id: 't1', name: 'one', environmentId: 'env-a', createdAt: '2026-01-01T00:00:00.000Z', expiresAt: '2027-01-01T00:00:00.000Z', revokedAt: null }, hash);
        expect(await b.tokens.findByHash(hash)).toEqual({ id: 't1', name: 'one', environmentId: 'env-a', createdAt: '2026-01-01T00:00:00.000Z', expiresAt: '2027-01-01T00:00:00.000Z', revokedAt: null });
        expect(await b.tokens.findByHash(randomBytes(32))).toBeUndefined();
        expect((await b.tokens.list()).map((t) => t.id)).toEqual(['t1', 't2']);
        expect(await b.tokens.count()).toBe(2);
        expect(await b.tokens.revoke('t1', '2026-02-01T00:00:00.000Z')).toBe(true);
        expect(await a.tokens.revoke('t1', '2026-02-02T00:00:00.000Z')).toBe(false);
        expect((await a.tokens.findByHash(hash))?.revokedAt).toBe('2026-02-01T00:00:00.000Z');
      });
    });

    describe('change signals', () => {
      it("moves the other node's change stamp after an account change and after a token revocation", async () => {
        const before = b.accounts.changeStamp();
        await a.accounts.create(account('acc-1'));
        await eventually(() => b.accounts.changeStamp() !== before, 5_000);
        const hash = randomBytes(32);
        await a.tokens.add({ id: 't1', name: 'one', environmentId: 'env-a', createdAt: '2026-01-01T00:00:00.000Z', expiresAt: null, revokedAt: null }, hash);
        await eventually(async () => (await b.tokens.findByHash(hash)) !== undefined, 5_000);
        const beforeRevoke = b.tokens.changeStamp();
        await a.tokens.revoke('t1', '2026-02-01T00:00:00.000Z');
        await eventually(() => b.tokens.changeStamp() !== beforeRevoke, 5_000);
      });
    });

    // Shared counters and locks exist on PostgreSQL only (on SQLite each process counts its own, in the API).
    if (backend.name === 'PostgreSQL') describe('rate-limit counters and locks (shared by the nodes)', () => {
      it('counts every node exactly, and starts a new window when the last ended', async () => {
        const c = await storage.node();
        const nodes = [a, b, c].map((n) => n.rateLimits as RateLimitCounterStore);
        await Promise.all(Array.from({ length: 30 }, (_, i) => (nodes[i % 3] as RateLimitCounterStore).increment('token:t', 60_000)));
        expect((await nodes[0]?.get('token:t'))?.hits).toBe(30);
        const first = await nodes[1]?.increment('token:short', 200);
        expect(first?.hits).toBe(1);
        await eventually(async () => (await nodes[2]?.get('token:short')) === undefined, 5_000);
        expect((await nodes[2]?.increment('token:short', 200))?.hits).toBe(1);
      });

      it('runs the work of one lock name on one node at a time; other names do not wait', async () => {
        const [lockA, lockB] = [a.locks, b.locks] as [AccountLocks, AccountLocks];
        const events: string[] = [];
        let aIn!: () => void;
        const aEntered = new Promise<void>((resolve) => (aIn = resolve));
        let cDone!: () => void;
        const cFinished = new Promise<void>((resolve) => (cDone = resolve));
        // a holds acc-1 until c (another account) has run: c must not wait for a (else this times out).
        const first = lockA.withLock('oauth-refresh:acc-1', async () => {
          events.push('a in');
          aIn();
          await Promise.race([cFinished, new Promise((_, reject) => setTimeout(() => reject(new Error('c waited for a')), 10_000))]);
          events.push('a out');
          return 'a';
        });
        await aEntered;
        const second = lockB.withLock('oauth-refresh:acc-1', async () => {
          events.push('b in');
          return 'b';
        });
        const third = lockB.withLock('oauth-refresh:acc-2', async () => {
          events.push('c');
          cDone();
          return 'c';
        });
        expect(await Promise.all([first, second, third])).toEqual(['a', 'b', 'c']);
        // b (same account, another node) entered only after a left.
        expect(events.indexOf('b in')).toBeGreaterThan(events.indexOf('a out'));
        // A failing work gives the lock back.
        await expect(lockA.withLock('oauth-refresh:acc-1', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
        expect(await lockB.withLock('oauth-refresh:acc-1', async () => 'free')).toBe('free');
      });

      it('counts concurrent requests exactly, together: each gets its own counts, and only those within the first limit count against the second', async () => {
        const [storeA, storeB] = [a.rateLimits, b.rateLimits] as [RateLimitCounterStore, RateLimitCounterStore];
        const checks = [
          { key: 'token:burst', windowMs: 60_000, limit: 25 },
          { key: 'account:burst', windowMs: 60_000, limit: 1_000 },
        ];
        // 40 requests on each of two nodes at once (each node counts its own in one statement per event-loop turn).
        const hits = await Promise.all(Array.from({ length: 80 }, (_, i) => (i % 2 ? storeA : storeB).count(checks)));
        const firsts = hits.map((h) => h[0]?.hits as number).sort((x, y) => x - y);
        expect(firsts).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
        const within = hits.filter((h) => (h[0]?.hits as number) <= 25);
        expect(within.map((h) => h[1]?.hits as number).sort((x, y) => x - y)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
        expect((await storeA.get('account:burst'))?.hits).toBe(25);
        // Those over the first limit read the second counter without moving it (0 while no count of it is committed).
        expect(hits.filter((h) => (h[0]?.hits as number) > 25).every((h) => (h[1]?.hits as number) <= 25)).toBe(true);
      });

      it('counts two limits in one call; a request over the first limit is not counted against the second', async () => {
        const store = a.rateLimits as RateLimitCounterStore;
        const checks = [
          { key: 'token:t', windowMs: 60_000, limit: 2 },
          { key: 'account:x', windowMs: 60_000, limit: 100 },
        ];
        expect((await store.count(checks)).map((h) => h.hits)).toEqual([1, 1]);
        expect((await store.count(checks)).map((h) => h.hits)).toEqual([2, 2]);
        // The token is over: the account is read (2), not counted.
        expect((await store.count(checks)).map((h) => h.hits)).toEqual([3, 2]);
        expect((await store.count([{ key: 'token:new', windowMs: 60_000, limit: 0 }, { key: 'account:none', windowMs: 60_000, limit: 5 }])).map((h) => [h.hits, h.resetAt === undefined])).toEqual([
          [1, false],
          [0, true],
        ]);
      });
    });

    describe('idempotency records', () => {
      const FAR = '2999-01-01T00:00:00.000Z';
      it('lets exactly one of three nodes claim a key at once; the others read the holder', async () => {
        const c = await storage.node();
        const results = await Promise.all([a, b, c].map((n, i) => n.idempotency.claim('s1', 'fp', '2026-01-01T00:00:00.000Z', FAR, lease(`tok-${i}`, FAR))));
        expect(results.filter((r) => r === undefined)).toHaveLength(1);
        const holder = results.findIndex((r) => r === undefined);
        for (const r of results) if (r) expect(r).toMatchObject({ state: 'in_flight', fingerprint: 'fp', claimToken: `tok-${holder}` });
      });

      it('completes, releases and marks ambiguous only with the holding token', async () => {
        await a.idempotency.claim('s1', 'fp', '2026-01-01T00:00:00.000Z', FAR, lease('tok', FAR));
        const answer = { statusCode: 201, body: '{"id":"1"}', rawText: null, headers: { 'x-a': '1' } };
        expect(await b.idempotency.complete('s1', 'other', answer)).toBe(false);
        expect(await b.idempotency.complete('s1', 'tok', answer)).toBe(true);
        expect(await b.idempotency.claim('s1', 'fp', '2026-01-02T00:00:00.000Z', FAR, lease('tok2', FAR))).toMatchObject({
          state: 'done',
          statusCode: 201,
          body: '{"id":"1"}',
          headers: { 'x-a': '1' },
        });
        await a.idempotency.claim('s2', 'fp', '2026-01-01T00:00:00.000Z', FAR, lease('tok', FAR));
        expect(await b.idempotency.markAmbiguous('s2', 'other', '2026-01-03T00:00:00.000Z')).toBe(false);
        expect(await b.idempotency.markAmbiguous('s2', 'tok', '2026-01-03T00:00:00.000Z')).toBe(true);
        expect(await a.idempotency.claim('s2', 'fp', '2026-01-04T00:00:00.000Z', FAR, lease('x', FAR))).toMatchObject({ state: 'ambiguous', createdAt: '2026-01-03T00:00:00.000Z' });
        await a.idempotency.claim('s3', 'fp', '2026-01-01T00:00:00.000Z', FAR, lease('tok', FAR));
        expect(await b.idempotency.release('s3', 'other')).toBe(false);
        expect(await b.idempotency.release('s3', 'tok')).toBe(true);
        expect(await a.idempotency.claim('s3', 'fp', '2026-01-01T00:00:00.000Z', FAR, lease('new', FAR))).toBeUndefined();
      });

      it('never takes over a live lease; of two nodes taking over an abandoned key, exactly one wins', async () => {
        await a.idempotency.claim('s1', 'fp', '2026-01-01T00:00:00.000Z', FAR, lease('old', '2026-01-01T00:00:30.000Z'));
        expect(await b.idempotency.takeOver('s1', 'old', lease('b', FAR), '2026-01-01T00:00:10.000Z')).toBe(false);
        // Renewed by its holder: still live later on.
        expect(await a.idempotency.renew([{ scope: 's1', token: 'old' }, { scope: 'gone', token: 'x' }], '2026-01-01T00:01:00.000Z')).toBe(1);
        expect(await b.idempotency.takeOver('s1', 'old', lease('b', FAR), '2026-01-01T00:00:45.000Z')).toBe(false);
        const wins = await Promise.all([a, b].map((n, i) => n.idempotency.takeOver('s1', 'old', lease(`new-${i}`, FAR), '2026-01-01T00:02:00.000Z')));
        expect(wins.filter(Boolean)).toHaveLength(1);
      });

      it('prunes expired records only', async () => {
        await a.idempotency.claim('old', 'fp', '2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z', lease('t', '2026-01-01T00:00:30.000Z'));
        await a.idempotency.claim('new', 'fp', '2026-01-01T00:00:00.000Z', FAR, lease('t', FAR));
        expect(await b.idempotency.prune('2026-01-03T00:00:00.000Z')).toBe(1);
        expect(await b.idempotency.claim('new', 'fp', '2026-01-01T00:00:00.000Z', FAR, lease('u', FAR))).toMatchObject({ claimToken: 't' });
      });
    });

    describe('link tokens (issue 17)', () => {
      const hash = Buffer.alloc(32, 7);
      it('are found by hash; one submission holds one at a time across nodes; used once; expired ones cannot be held', async () => {
        await a.linkTokens.add(linkToken(), hash);
        expect(await b.linkTokens.find(hash)).toEqual(linkToken());
        expect(await b.linkTokens.find(Buffer.alloc(32, 8))).toBeUndefined();
        const holds = await Promise.all([a, b].map((n) => n.linkTokens.hold(hash, '2026-01-01T00:01:00.000Z', '2026-01-01T00:03:00.000Z')));
        expect(holds.filter(Boolean)).toHaveLength(1);
        // The hold ended (its submission died): another may take it.
        expect(await b.linkTokens.hold(hash, '2026-01-01T00:02:00.000Z', '2026-01-01T00:04:00.000Z')).toBe(false);
        expect(await b.linkTokens.hold(hash, '2026-01-01T00:03:00.000Z', '2026-01-01T00:05:00.000Z')).toBe(true);
        await b.linkTokens.release(hash);
        expect(await a.linkTokens.hold(hash, '2026-01-01T00:03:30.000Z', '2026-01-01T00:05:00.000Z')).toBe(true);
        expect(await a.linkTokens.markUsed(hash, '2026-01-01T00:04:00.000Z')).toBe(true);
        expect(await b.linkTokens.markUsed(hash, '2026-01-01T00:04:01.000Z')).toBe(false);
        expect(await b.linkTokens.hold(hash, '2026-01-01T00:10:00.000Z', '2026-01-01T00:12:00.000Z')).toBe(false);
        expect((await b.linkTokens.find(hash))?.usedAt).toBe('2026-01-01T00:04:00.000Z');
        const other = Buffer.alloc(32, 9);
        await a.linkTokens.add(linkToken(), other);
        expect(await b.linkTokens.hold(other, '2026-01-01T00:15:00.000Z', '2026-01-01T00:17:00.000Z')).toBe(false);
        expect(await b.linkTokens.prune('2026-01-01T00:15:00.001Z')).toBe(2);
        expect(await a.linkTokens.find(other)).toBeUndefined();
      });
    });

    describe('link tokens: consent flows (issue 17)', () => {
      it('find the token of a consent flow by its state; a new flow replaces the old state; a used token starts none', async () => {
        const hash = Buffer.alloc(32, 1);
        await a.linkTokens.add(linkToken(), hash);
        expect(await a.linkTokens.startOAuth(hash, Buffer.alloc(32, 2), 'pipedrive')).toBe(true);
        expect(await b.linkTokens.findByOAuthState(Buffer.alloc(32, 2))).toEqual({ record: linkToken(), tokenHash: hash, integration: 'pipedrive' });
        expect(await b.linkTokens.startOAuth(hash, Buffer.alloc(32, 3), 'pipedrive')).toBe(true);
        expect(await a.linkTokens.findByOAuthState(Buffer.alloc(32, 2))).toBeUndefined();
        expect((await a.linkTokens.findByOAuthState(Buffer.alloc(32, 3)))?.tokenHash).toEqual(hash);
        await a.linkTokens.markUsed(hash, '2026-01-01T00:05:00.000Z');
        expect(await b.linkTokens.startOAuth(hash, Buffer.alloc(32, 4), 'pipedrive')).toBe(false);
        expect(await b.linkTokens.startOAuth(Buffer.alloc(32, 9), Buffer.alloc(32, 5), 'pipedrive')).toBe(false);
      });
    });

    describe('webhooks and the outbox (issue 17)', () => {
      it('stores webhooks (secret sealed at rest), lists them in pages, updates and deletes them', async () => {
        await a.webhooks.create(webhook('00000000-0000-4000-8000-000000000001', { eventTypes: ['integrated_account:created'] }));
        await a.webhooks.create(webhook('00000000-0000-4000-8000-000000000002', { createdAt: '2026-01-02T00:00:00.000Z' }));
        await a.webhooks.create(webhook('00000000-0000-4000-8000-000000000003', { environmentId: 'env-b' }));
        expect(await b.webhooks.get('env-a', '00000000-0000-4000-8000-000000000001')).toEqual(webhook('00000000-0000-4000-8000-000000000001', { eventTypes: ['integrated_account:created'] }));
        expect(await b.webhooks.get('env-b', '00000000-0000-4000-8000-000000000001')).toBeUndefined();
        const first = await b.webhooks.list('env-a', { limit: 1 });
        expect(first.webhooks.map((w) => w.id)).toEqual(['00000000-0000-4000-8000-000000000001']);
        const second = await b.webhooks.list('env-a', { limit: 1, cursor: first.nextCursor as string });
        expect(second.webhooks.map((w) => w.id)).toEqual(['00000000-0000-4000-8000-000000000002']);
        expect(second.nextCursor).toBeNull();
        await expect(b.webhooks.list('env-a', { limit: 1, cursor: 'nope' })).rejects.toBeInstanceOf(InvalidCursorError);
        const changed = webhook('00000000-0000-4000-8000-000000000002', { createdAt: '2026-01-02T00:00:00.000Z', isActive: false, targetUrl: 'https://x.example/y', updatedAt: '2026-01-03T00:00:00.000Z' });
        expect(await b.webhooks.update(changed)).toBe(true);
        expect(await a.webhooks.get('env-a', changed.id)).toEqual(changed);
        expect(await a.webhooks.delete('env-b', changed.id)).toBe(false);
        expect(await a.webhooks.delete('env-a', changed.id)).toBe(true);
        expect(await b.webhooks.get('env-a', changed.id)).toBeUndefined();
        await storage.exec(`SELECT 1`);
      });

      it('writes an account event with the account, fanned out to the subscribed active webhooks of its environment only', async () => {
        const all = '00000000-0000-4000-8000-00000000000a';
        const createdOnly = '00000000-0000-4000-8000-00000000000b';
        const deletedOnly = '00000000-0000-4000-8000-00000000000c';
        const inactive = '00000000-0000-4000-8000-00000000000d';
        const elsewhere = '00000000-0000-4000-8000-00000000000e';
        await a.webhooks.create(webhook(all));
        await a.webhooks.create(webhook(createdOnly, { eventTypes: ['integrated_account:created', 'integrated_account:updated'] }));
        await a.webhooks.create(webhook(deletedOnly, { eventTypes: ['integrated_account:deleted'] }));
        await a.webhooks.create(webhook(inactive, { isActive: false }));
        await a.webhooks.create(webhook(elsewhere, { environmentId: 'env-b' }));
        await a.accounts.create(account('acc-1'), [accountEvent('ev-1', 'integrated_account:created')]);
        const claimed = await b.webhooks.claimDue('2026-01-01T00:00:01.000Z', '2026-01-01T00:01:00.000Z', 'lease-b', 50);
        expect(claimed.map((c) => c.webhookId).sort()).toEqual([all, createdOnly]);
        expect(claimed[0]).toMatchObject({ event: accountEvent('ev-1', 'integrated_account:created'), attempts: 0, leaseToken: 'lease-b' });
        expect(claimed.find((c) => c.webhookId === all)?.secret).toBe(`secret-of-${all}`);
      });

      it('writes no event for a change that did not happen, and no change without its event', async () => {
        await a.webhooks.create(webhook('00000000-0000-4000-8000-00000000000a'));
        await a.accounts.create(account('acc-1'), [accountEvent('ev-1', 'integrated_account:created')]);
        expect(await a.accounts.update(account('missing'), [accountEvent('ev-2', 'integrated_account:updated')])).toBe(false);
        expect(await a.accounts.setStatus('env-a', 'acc-1', 'needs_reauth', 'x', '2026-01-02T00:00:00.000Z', '1999-01-01T00:00:00.000Z', [accountEvent('ev-3', 'integrated_account:authentication_error')])).toBe(false);
        expect(await a.accounts.delete('env-a', 'missing', [accountEvent('ev-4', 'integrated_account:deleted')])).toBe(false);
        // The event cannot be written (its id is taken): the account change is rolled back with it.
        await expect(a.accounts.update(account('acc-1', { tenantId: 'changed' }), [accountEvent('ev-1', 'integrated_account:updated')])).rejects.toThrow();
        expect((await b.accounts.get('env-a', 'acc-1'))?.tenantId).toBe('acme');
        expect(await a.accounts.setStatus('env-a', 'acc-1', 'needs_reauth', 'rejected', '2026-01-02T00:00:00.000Z', '2026-01-01T00:00:00.000Z', [accountEvent('ev-5', 'integrated_account:authentication_error')])).toBe(true);
        expect(await a.accounts.delete('env-a', 'acc-1', [accountEvent('ev-6', 'integrated_account:deleted')])).toBe(true);
        const claimed = await b.webhooks.claimDue('2026-01-03T00:00:00.000Z', '2026-01-03T00:01:00.000Z', 'l', 50);
        expect(claimed.map((c) => c.event.id).sort()).toEqual(['ev-1', 'ev-5', 'ev-6']);
      });

      it('gives each due delivery to one worker across nodes; retries when due; records attempts; a lost lease writes nothing', async () => {
        const hook = '00000000-0000-4000-8000-00000000000a';
        await a.webhooks.create(webhook(hook));
        const events = Array.from({ length: 12 }, (_, i) => accountEvent(`ev-${String(i).padStart(2, '0')}`, 'integrated_account:updated'));
        await a.webhooks.record(events);
        const [fromA, fromB] = await Promise.all([
          a.webhooks.claimDue('2026-01-01T00:00:01.000Z', '2026-01-01T00:01:00.000Z', 'lease-a', 8),
          b.webhooks.claimDue('2026-01-01T00:00:01.000Z', '2026-01-01T00:01:00.000Z', 'lease-b', 8),
        ]);
        const ids = [...(fromA ?? []), ...(fromB ?? [])].map((c) => c.event.id);
        expect(ids).toHaveLength(12);
        expect(new Set(ids).size).toBe(12);
        // Held: nothing more to claim until the leases end.
        expect(await a.webhooks.claimDue('2026-01-01T00:00:30.000Z', '2026-01-01T00:02:00.000Z', 'lease-c', 50)).toEqual([]);
        const one = (fromA ?? [])[0] ?? (fromB ?? [])[0];
        if (!one) throw new Error('nothing claimed');
        const attempt = { attempt: 1, startedAt: '2026-01-01T00:00:02.000Z', statusCode: 503, error: 'the receiver answered 503', durationMs: 12 };
        expect(await a.webhooks.finish(one.event.id, hook, 'wrong-lease', attempt, { state: 'pending', nextAttemptAt: '2026-01-01T00:00:12.000Z', at: '2026-01-01T00:00:02.000Z' })).toBe(false);
        expect(await a.webhooks.finish(one.event.id, hook, one.leaseToken, attempt, { state: 'pending', nextAttemptAt: '2026-01-01T00:00:12.000Z', at: '2026-01-01T00:00:02.000Z' })).toBe(true);
        // Not due before its next attempt; due after, with the attempt counted.
        expect((await b.webhooks.claimDue('2026-01-01T00:00:11.000Z', '2026-01-01T00:00:40.000Z', 'r1', 50)).map((c) => c.event.id)).toEqual([]);
        const retry = await b.webhooks.claimDue('2026-01-01T00:00:12.000Z', '2026-01-01T00:00:40.000Z', 'r2', 50);
        expect(retry.map((c) => [c.event.id, c.attempts])).toEqual([[one.event.id, 1]]);
        const ok = { attempt: 2, startedAt: '2026-01-01T00:00:13.000Z', statusCode: 200, error: null, durationMs: 5 };
        expect(await b.webhooks.finish(one.event.id, hook, 'r2', ok, { state: 'delivered', nextAttemptAt: null, at: '2026-01-01T00:00:13.000Z' })).toBe(true);
        // The other leases ended (their worker died): claimed again, each once.
        const again = await a.webhooks.claimDue('2026-01-01T00:01:00.000Z', '2026-01-01T00:02:00.000Z', 'lease-d', 50);
        expect(again).toHaveLength(11);
        const listed = await b.webhooks.deliveries('env-a', hook, { limit: 50 });
        const delivered = listed.deliveries.find((d) => d.eventId === one.event.id);
        expect(delivered).toMatchObject({ state: 'delivered', deliveredAt: '2026-01-01T00:00:13.000Z', nextAttemptAt: null, event: 'integrated_account:updated' });
        expect(delivered?.attempts).toEqual([attempt, ok]);
        expect(listed.deliveries).toHaveLength(12);
        const page = await b.webhooks.deliveries('env-a', hook, { limit: 5 });
        const next = await b.webhooks.deliveries('env-a', hook, { limit: 50, cursor: page.nextCursor as string });
        expect([...page.deliveries, ...next.deliveries].map((d) => d.eventId)).toEqual([...events].reverse().map((e) => e.id));
        expect(await b.webhooks.deliveries('env-b', hook, { limit: 5 })).toEqual({ deliveries: [], nextCursor: null });
        // Deleting the webhook drops its deliveries.
        expect(await a.webhooks.delete('env-a', hook)).toBe(true);
        expect(await b.webhooks.claimDue('2026-01-02T00:00:00.000Z', '2026-01-02T00:01:00.000Z', 'e', 50)).toEqual([]);
      });

      it('prunes events past the retention whose deliveries are all final; an event still being retried stays', async () => {
        const hook = '00000000-0000-4000-8000-00000000000a';
        await a.webhooks.create(webhook(hook));
        await a.webhooks.record([accountEvent('old-done', 'integrated_account:updated'), accountEvent('old-retrying', 'integrated_account:updated')]);
        const claimed = await a.webhooks.claimDue('2026-01-01T00:00:01.000Z', '2026-01-01T00:01:00.000Z', 'l', 50);
        const attempt = (n: number) => ({ attempt: n, startedAt: '2026-01-01T00:00:02.000Z', statusCode: 200, error: null, durationMs: 1 });
        const done = claimed.find((c) => c.event.id === 'old-done');
        const retrying = claimed.find((c) => c.event.id === 'old-retrying');
        expect(await a.webhooks.finish('old-done', hook, done?.leaseToken as string, attempt(1), { state: 'delivered', nextAttemptAt: null, at: '2026-01-01T00:00:02.000Z' })).toBe(true);
        expect(await a.webhooks.finish('old-retrying', hook, retrying?.leaseToken as string, { ...attempt(1), statusCode: 503 }, { state: 'pending', nextAttemptAt: '2026-01-01T00:10:00.000Z', at: '2026-01-01T00:00:02.000Z' })).toBe(true);
        expect(await b.webhooks.prune('2026-01-01T00:00:00.000Z', 10)).toBe(0); // nothing is older than this
        expect(await b.webhooks.prune('2026-02-01T00:00:00.000Z', 10)).toBe(1);
        expect((await a.webhooks.deliveries('env-a', hook, { limit: 50 })).deliveries.map((d) => d.eventId)).toEqual(['old-retrying']);
        expect(await b.webhooks.prune('2026-02-01T00:00:00.000Z', 10)).toBe(0);
      });

      it('sends a test event to one webhook, active or not', async () => {
        await a.webhooks.create(webhook('00000000-0000-4000-8000-00000000000a', { isActive: false }));
        await a.webhooks.create(webhook('00000000-0000-4000-8000-00000000000b'));
        await a.webhooks.record([accountEvent('t-1', 'test')], '00000000-0000-4000-8000-00000000000a');
        const claimed = await b.webhooks.claimDue('2026-01-01T00:00:01.000Z', '2026-01-01T00:01:00.000Z', 'l', 50);
        expect(claimed.map((c) => [c.event.id, c.webhookId])).toEqual([['t-1', '00000000-0000-4000-8000-00000000000a']]);
      });
    });
  });
}
