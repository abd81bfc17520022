import { Client, Pool, type PoolConfig, type QueryResult, type QueryResultRow } from 'pg';
import { UnicrmError } from '@unicrm/model';
import { CONNECT_MIGRATION_POSTGRES } from '../connect-schema';
import { KEY_CHECK, KEY_CHECK_ROW } from '../database';
import { newDataKey } from '../keyring';
import type { SecretBox } from '../secret-box';

/**
 * The PostgreSQL schema, one SQL text per version (docs/deployment.md "Upgrades"). Applied in order at start, each in
 * its own transaction, under a session advisory lock ({@link MIGRATION_LOCK}), so nodes that start together migrate
 * once. Mirrors the SQLite schema: times are ISO 8601 UTC text, compared byte by byte as in SQLite (`COLLATE "C"`), the token hash is
 * `bytea`. `unicrm_changes` holds one version number that statement triggers bump (and announce with `NOTIFY
 * unicrm_changes`) on every change of accounts or tokens, whichever node or tool made it.
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `CREATE TABLE unicrm_meta (key text PRIMARY KEY, value text NOT NULL);
   CREATE TABLE integrated_accounts (
     id text COLLATE "C" PRIMARY KEY,
     environment_id text NOT NULL,
     tenant_id text NOT NULL,
     integration text NOT NULL,
     status text NOT NULL,
     public_context text NOT NULL,
     sealed_context text NOT NULL,
     last_error text,
     created_at text COLLATE "C" NOT NULL,
     updated_at text COLLATE "C" NOT NULL
   );
   CREATE INDEX integrated_accounts_listing ON integrated_accounts (environment_id, created_at, id);
   CREATE TABLE api_tokens (
     id text COLLATE "C" PRIMARY KEY,
     name text NOT NULL,
     environment_id text NOT NULL,
     token_hash bytea NOT NULL UNIQUE,
     created_at text COLLATE "C" NOT NULL,
     expires_at text COLLATE "C",
     revoked_at text COLLATE "C"
   );
   CREATE TABLE idempotency_records (
     scope text COLLATE "C" PRIMARY KEY,
     state text NOT NULL,
     fingerprint text NOT NULL,
     status_code integer,
     body text,
     raw_text text,
     headers text NOT NULL DEFAULT '{}',
     created_at text COLLATE "C" NOT NULL,
     expires_at text COLLATE "C" NOT NULL,
     claim_token text NOT NULL,
     lease_expires_at text COLLATE "C" NOT NULL
   );
   CREATE INDEX idempotency_records_expiry ON idempotency_records (expires_at);
   CREATE TABLE unicrm_changes (id integer PRIMARY KEY CHECK (id = 1), version bigint NOT NULL);
   INSERT INTO unicrm_changes (id, version) VALUES (1, 0);
   CREATE FUNCTION unicrm_note_change() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     UPDATE unicrm_changes SET version = version + 1 WHERE id = 1;
     PERFORM pg_notify('unicrm_changes', '');
     RETURN NULL;
   END $$;
   CREATE TRIGGER integrated_accounts_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON integrated_accounts
     FOR EACH STATEMENT EXECUTE FUNCTION unicrm_note_change();
   CREATE TRIGGER api_tokens_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_tokens
     FOR EACH STATEMENT EXECUTE FUNCTION unicrm_note_change();
   CREATE TRIGGER unicrm_meta_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON unicrm_meta
     FOR EACH STATEMENT EXECUTE FUNCTION unicrm_note_change();`,
  // Rate-limit counters shared by the nodes: UNLOGGED (not written to the WAL, emptied after a crash, which only
  // forgives the windows under way), one row per key and window.
  `CREATE UNLOGGED TABLE rate_limit_counters (key text COLLATE "C" PRIMARY KEY, hits integer NOT NULL, reset_at timestamptz NOT NULL);`,
  // The keyring (issue 14 item 5): data keys wrapped with the master key, at most one active. A change is announced
  // like the others, so nodes load the new key before they meet a value sealed with it.
  `CREATE TABLE unicrm_encryption_keys (
     kid text COLLATE "C" PRIMARY KEY,
     wrapped text,
     state text NOT NULL CHECK (state IN ('active', 'previous', 'retired')),
     created_at text COLLATE "C" NOT NULL,
     retired_at text COLLATE "C"
   );
   CREATE UNIQUE INDEX unicrm_encryption_keys_one_active ON unicrm_encryption_keys (state) WHERE state = 'active';
   CREATE TRIGGER unicrm_encryption_keys_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON unicrm_encryption_keys
     FOR EACH STATEMENT EXECUTE FUNCTION unicrm_note_change();`,
  // Issue 17: link tokens, webhooks and the account-event outbox (docs/connect.md).
  CONNECT_MIGRATION_POSTGRES,
];

/** The schema version of this unicrm's PostgreSQL database (rows of `unicrm_migrations`). */
export const POSTGRES_SCHEMA_VERSION = POSTGRES_MIGRATIONS.length;

/** Longest a statement may run, in ms: past it the server cancels it (and the call answers 503). */
export const STATEMENT_TIMEOUT_MS = 5_000;

/** How long {@link PostgresDatabase.query} fails at once after finding the database unreachable, in ms. */
const UNREACHABLE_HOLD_MS = 2_000;

/**
 * True for a failure that says the database cannot serve now (connection refused, lost or timed out; a statement
 * cancelled by its timeout; the server shutting down), not that the statement is wrong.
 */
export function isUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code === '57014' || code.startsWith('57P') || code.startsWith('08') || code === '53300';
  return true; // no SQLSTATE: a network error, a client timeout, "Connection terminated"
}

/**
 * The error of a first connection, in words an operator can act on; node-postgres' own message is kept after them.
 * Its SCRAM message ("SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string") means the server asked
 * for a password and the URL had none.
 */
export function explainConnectError(error: unknown): Error {
  const message = (error as Error).message ?? String(error);
  if (/client password must be a string/.test(message)) {
    return new Error(
      `PostgreSQL asked for a password and UNICRM_DATABASE_URL has none: put it in the URL (postgres://user:password@host:5432/database) or in PGPASSWORD (${message}).`,
    );
  }
  if ((error as { code?: string }).code === '28P01') return new Error(`PostgreSQL refused the user name or password of UNICRM_DATABASE_URL (${message}).`);
  if ((error as { code?: string }).code === '3D000') return new Error(`The database named in UNICRM_DATABASE_URL does not exist: create it first (createdb), or name another (${message}).`);
  return error instanceof Error ? error : new Error(message);
}

/** `pg_advisory_lock` key held while migrating: `unicrm` in ASCII. */
export const MIGRATION_LOCK = 0x756e6963726d;

/** What {@link PostgresDatabase} is given. */
export interface PostgresOptions {
  /** `postgres://user:password@host:port/database` (`UNICRM_DATABASE_URL`). */
  url: string;
  /** Most connections this node opens (`UNICRM_DATABASE_POOL_SIZE`, default 10). */
  poolSize?: number;
  /** Longest wait for a pooled connection or a new one, in ms (default 5 000); past it the call fails. */
  connectTimeoutMs?: number;
  /** How often the change feed polls the change version, in ms (default 1 000): the bound of a missed notification. */
  changePollMs?: number;
}

/** What runs SQL: the pool, or a {@link PostgresDatabase} that waits for its start first. */
export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(text: string, params?: unknown[], name?: string): Promise<QueryResult<R>>;
}

/**
 * One node's PostgreSQL (issue 14): a node-postgres pool with a bounded wait, the migrations, the key check and the
 * change feed. Made synchronously (the core is built synchronously); its start (migrations under the advisory lock,
 * the key check, the feed's listener) begins at once, and every {@link query} waits for it, so nothing reads a
 * database that is not migrated yet. {@link started} says how the start went.
 */
export class PostgresDatabase implements Queryable {
  readonly pool: Pool;
  readonly feed: PostgresChangeFeed;
  /** Resolves when migrated and the key fits; rejects with why not (the queries reject with the same error). */
  readonly started: Promise<void>;

  constructor(box: SecretBox, options: PostgresOptions) {
    const pool = new Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
      idleTimeoutMillis: 30_000,
      application_name: 'unicrm',
      // Every statement is bounded: the server cancels it past STATEMENT_TIMEOUT_MS (a lock held elsewhere), and the
      // client gives up a little later (a database that stopped answering); keep-alive finds dead connections.
      statement_timeout: STATEMENT_TIMEOUT_MS,
      query_timeout: STATEMENT_TIMEOUT_MS + 1_000,
      keepAlive: true,
    } satisfies PoolConfig);
    // An idle client's error (the server restarted) must not crash the process: the pool drops that client.
    pool.on('error', () => undefined);
    const feed = new PostgresChangeFeed(pool, options.url, options.changePollMs);
    this.pool = pool;
    this.feed = feed;
    this.started = (async () => {
      try {
        await migrate(pool);
      } catch (error) {
        throw explainConnectError(error);
      }
      if (!(await postgresKeyFits(pool, box))) {
        throw new Error(
          'The encryption key does not match the one the data in this PostgreSQL database was written with. ' +
            'Set UNICRM_ENCRYPTION_KEY to that key on every node.',
        );
      }
      await ensurePostgresDataKey(pool, box);
      await feed.start();
    })();
    // Observed here so that a failed start is not an unhandled rejection; callers await `started` or a query.
    this.started.catch(() => undefined);
  }

  /**
   * Runs a statement once the database is started; with `name`, as a prepared statement of that name.
   * @throws the start's error, or the statement's
   */
  async query<R extends QueryResultRow = QueryResultRow>(text: string, params?: unknown[], name?: string): Promise<QueryResult<R>> {
    await this.started;
    // While the database was just found unreachable, fail at once instead of waiting for a connection each time.
    if (Date.now() < this.unreachableUntil) throw this.unavailable(this.lastFailure);
    try {
      // A name prepares the statement once per connection (hot statements: no parse and plan per call).
      return await (name === undefined ? this.pool.query<R>(text, params) : this.pool.query<R>({ name, text, values: params }));
    } catch (error) {
      if (!isUnavailable(error)) throw error;
      this.lastFailure = (error as Error).message;
      this.unreachableUntil = Date.now() + UNREACHABLE_HOLD_MS;
      throw this.unavailable(this.lastFailure);
    }
  }

  /** Until when {@link query} fails at once (ms since the epoch), after the database was found unreachable. */
  private unreachableUntil = 0;
  private lastFailure = '';

  private unavailable(why: string): UnicrmError {
    return new UnicrmError(503, `The database cannot be reached or did not answer in time (${why}); retry in a few seconds.`, {}, { 'retry-after': '5' });
  }

  /** The schema version applied, or undefined when the database cannot be read (`GET /ready`). */
  async schemaVersion(): Promise<number | undefined> {
    try {
      const { rows } = await this.pool.query<{ v: number | null }>('SELECT max(version) AS v FROM unicrm_migrations');
      return rows[0]?.v ?? 0;
    } catch {
      return undefined;
    }
  }

  /** Stops the feed and closes the pool. */
  async close(): Promise<void> {
    await this.started.catch(() => undefined);
    await this.feed.close();
    await this.pool.end();
  }
}

/**
 * Applies the migrations not applied yet, each in a transaction, under {@link MIGRATION_LOCK}.
 * @returns the versions applied by this call (empty when another node, or an earlier start, did it)
 * @throws Error when the database is newer than this unicrm (a rollback past a migration)
 */
export async function migrate(pool: Pool): Promise<number[]> {
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await client.query('CREATE TABLE IF NOT EXISTS unicrm_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
      const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM unicrm_migrations');
      const current = rows[0]?.v ?? 0;
      if (current > POSTGRES_MIGRATIONS.length) {
        throw new Error(`The database's schema is version ${current}; this unicrm knows up to ${POSTGRES_MIGRATIONS.length}. Run a newer unicrm.`);
      }
      for (let version = current + 1; version <= POSTGRES_MIGRATIONS.length; version++) {
        await client.query('BEGIN');
        try {
          await client.query(POSTGRES_MIGRATIONS[version - 1] as string);
          await client.query('INSERT INTO unicrm_migrations (version) VALUES ($1)', [version]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK');
          throw new Error(`PostgreSQL migration ${version} failed: ${(error as Error).message}`);
        }
        applied.push(version);
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  } finally {
    client.release();
  }
  return applied;
}

/** True when `box` opens the database's key check (or there is none yet: one is written with `box`). */
export async function postgresKeyFits(pool: Queryable, box: SecretBox): Promise<boolean> {
  await pool.query('INSERT INTO unicrm_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [KEY_CHECK_ROW, box.seal(KEY_CHECK, KEY_CHECK_ROW)]);
  return (await postgresKeyCheck(pool, box)) !== undefined;
}

/**
 * The database's key check (its sealed text) when `box` opens it, else undefined (another key, or none written yet:
 * {@link postgresKeyFits} writes it at start). One read; writes nothing.
 */
export async function postgresKeyCheck(pool: Queryable, box: SecretBox): Promise<string | undefined> {
  const { rows } = await pool.query<{ value: string }>('SELECT value FROM unicrm_meta WHERE key = $1', [KEY_CHECK_ROW]);
  const value = rows[0]?.value;
  if (value === undefined) return undefined;
  try {
    return box.open(value, KEY_CHECK_ROW) === KEY_CHECK ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Makes the first data key when none is active (a new database, or one written before the keyring). Two nodes
 * starting together may both try: the unique index on the active key lets one insert win; the other's is ignored.
 */
export async function ensurePostgresDataKey(pool: Queryable, box: SecretBox): Promise<void> {
  const { kid, wrapped } = newDataKey(box);
  try {
    await pool.query(
      `INSERT INTO unicrm_encryption_keys (kid, wrapped, state, created_at)
       SELECT $1, $2, 'active', $3 WHERE NOT EXISTS (SELECT 1 FROM unicrm_encryption_keys WHERE state = 'active')`,
      [kid, wrapped, new Date().toISOString()],
    );
  } catch (error) {
    if ((error as { code?: string }).code !== '23505') throw error; // another node's first key won
  }
}

/**
 * Follows `unicrm_changes` for the caches of one node (issue 14 item 4): a counter that moves when any node or tool
 * changed accounts, tokens or the key check. Fed by `LISTEN unicrm_changes` on a dedicated connection (a change
 * reaches this node as fast as PostgreSQL delivers the notification) and by a poll of the version every
 * `pollMs` (default 1 000 ms), which bounds the delay when notifications are lost; whenever the listener
 * (re)connects, the counter moves too, so nothing cached across a gap in notifications survives it.
 */
export class PostgresChangeFeed {
  private stamp = 0;
  private version: string | undefined;
  /** When the version was last read (ms since the epoch). */
  private lastRead = Date.now();
  private listener: Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly pool: Pool,
    private readonly url: string,
    private readonly pollMs = 1_000,
  ) {}

  /** Starts listening and polling; resolves once the listener is connected (or failed: the poll still runs). */
  async start(): Promise<void> {
    this.timer = setInterval(() => void this.poll(), this.pollMs);
    this.timer.unref();
    await this.poll();
    await this.listen();
  }

  /**
   * The counter: changes whenever what the stores return may have changed. While the version could not be read for
   * {@link staleAfterMs} (the database is unreachable from this node), it changes on every call: nothing cached is
   * trusted, so a token revoked meanwhile is not accepted here (the requests answer 503 instead).
   */
  current(): number {
    if (Date.now() - this.lastRead > this.staleAfterMs) return ++this.stamp;
    return this.stamp;
  }

  /** How long caches are trusted without a successful read of the version, in ms: five polls. */
  get staleAfterMs(): number {
    return 5 * this.pollMs;
  }

  /** A write through this node: moves the counter now (the notification follows). */
  bump(): void {
    this.stamp++;
  }

  private async poll(): Promise<void> {
    try {
      const { rows } = await this.pool.query<{ version: string }>('SELECT version FROM unicrm_changes WHERE id = 1');
      const version = rows[0]?.version;
      if (version !== this.version || Date.now() - this.lastRead > this.staleAfterMs) {
        this.version = version;
        this.stamp++;
      }
      this.lastRead = Date.now();
    } catch {
      // The database is unreachable: past staleAfterMs, current() stops trusting caches; the next poll tries again.
    }
  }

  private async listen(): Promise<void> {
    if (this.closed) return;
    const client = new Client({ connectionString: this.url, application_name: 'unicrm-listener' });
    let gone = false;
    const lost = () => {
      if (gone) return;
      gone = true;
      this.reconnect(client);
    };
    client.on('notification', () => this.stamp++);
    client.on('error', lost);
    client.on('end', lost);
    try {
      await client.connect();
      await client.query('LISTEN unicrm_changes');
      this.listener = client;
      this.stamp++; // anything missed while not listening is read again
    } catch {
      lost();
    }
  }

  private reconnect(client: Client): void {
    if (this.listener === client) this.listener = undefined;
    client.end().catch(() => undefined);
    if (this.closed) return;
    setTimeout(() => void this.listen(), this.pollMs).unref();
  }

  /** Stops polling and listening. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    const listener = this.listener;
    this.listener = undefined;
    if (listener) {
      listener.removeAllListeners('end');
      listener.removeAllListeners('error');
      listener.on('error', () => undefined);
      await listener.end().catch(() => undefined);
    }
  }
}
