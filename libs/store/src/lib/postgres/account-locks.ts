import type { AccountLocks } from '@unicrm/model';
import { type PostgresDatabase, STATEMENT_TIMEOUT_MS } from './database';

/** Longest wait for a lock another node holds, in ms: past it the call fails (the holder's work is bounded too). */
const LOCK_WAIT_MS = 30_000;

/**
 * Locks shared by every node on one PostgreSQL (issue 15: one OAuth refresh per account across nodes): a session
 * advisory lock (`pg_advisory_lock` on a 64-bit hash of the name) held on a connection of its own for as long as the
 * work runs, released after it, and by PostgreSQL if the node dies. A wait is bounded by `lock_timeout`.
 */
export class PostgresAccountLocks implements AccountLocks {
  constructor(private readonly db: PostgresDatabase) {}

  async withLock<T>(name: string, work: () => Promise<T>): Promise<T> {
    await this.db.started;
    const client = await this.db.pool.connect();
    let locked = false;
    try {
      // The wait may be longer than a statement's usual bound (STATEMENT_TIMEOUT_MS): this session's own bounds.
      await client.query(`SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)`, [`${LOCK_WAIT_MS}ms`, `${LOCK_WAIT_MS + 1000}ms`]);
      await client.query({ text: 'SELECT pg_advisory_lock(hashtextextended($1, 0))', values: [name], query_timeout: LOCK_WAIT_MS + 2000 } as never);
      locked = true;
      return await work();
    } finally {
      // A connection whose lock could not be given back is closed (PostgreSQL drops its locks), never reused.
      let broken = false;
      if (locked) await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [name]).catch(() => (broken = true));
      await client.query(`SELECT set_config('lock_timeout', '0', false), set_config('statement_timeout', $1, false)`, [`${STATEMENT_TIMEOUT_MS}ms`]).catch(() => (broken = true));
      client.release(broken);
    }
  }
}
