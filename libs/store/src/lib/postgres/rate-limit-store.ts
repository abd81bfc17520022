import type { RateLimitCounterStore, RateLimitHit } from '@unicrm/model';
import type { PostgresDatabase } from './database';

/** Expired windows are deleted at most this often (ms). */
const PRUNE_EVERY_MS = 60_000;

/**
 * Rate-limit counters in PostgreSQL (issue 14 item 3): one `UNLOGGED` row per key, counted by one upsert that
 * starts a new window when the last one ended, timed by the database's clock (`clock_timestamp()`), so the nodes
 * agree on windows whatever their own clocks say. One round trip per counted request.
 */
export class PostgresRateLimitStore implements RateLimitCounterStore {
  private lastPrune = 0;

  constructor(private readonly db: PostgresDatabase) {}

  async increment(key: string, windowMs: number): Promise<RateLimitHit> {
    this.prune();
    const { rows } = await this.db.query<{ hits: number; reset_at: Date }>(
      `INSERT INTO rate_limit_counters AS c (key, hits, reset_at) VALUES ($1, 1, clock_timestamp() + $2 * interval '1 millisecond')
       ON CONFLICT (key) DO UPDATE SET
         hits = CASE WHEN c.reset_at <= clock_timestamp() THEN 1 ELSE c.hits + 1 END,
         reset_at = CASE WHEN c.reset_at <= clock_timestamp() THEN clock_timestamp() + $2 * interval '1 millisecond' ELSE c.reset_at END
       RETURNING hits, reset_at`,
      [key, windowMs],
    );
    const row = rows[0] as { hits: number; reset_at: Date };
    return { hits: row.hits, resetAt: row.reset_at };
  }

  async get(key: string): Promise<RateLimitHit | undefined> {
    const { rows } = await this.db.query<{ hits: number; reset_at: Date }>('SELECT hits, reset_at FROM rate_limit_counters WHERE key = $1 AND reset_at > clock_timestamp()', [key]);
    const row = rows[0];
    return row && { hits: row.hits, resetAt: row.reset_at };
  }

  /** Deletes windows that ended over a minute ago, at most once a minute, in the background. */
  private prune(): void {
    const now = Date.now();
    if (now - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = now;
    this.db.query(`DELETE FROM rate_limit_counters WHERE reset_at < clock_timestamp() - interval '1 minute'`).catch(() => undefined);
  }
}
