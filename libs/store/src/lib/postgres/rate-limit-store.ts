import type { RateLimitCheck, RateLimitCounterStore, RateLimitHit } from '@unicrm/model';
import type { PostgresDatabase } from './database';

/** Expired windows are deleted at most this often (ms). */
const PRUNE_EVERY_MS = 60_000;

/** The upsert of one counter (`$k` its key, `$w` its window in ms), as a CTE body: a new window when the last ended. */
const upsert = (k: string, w: string, where = '') => `INSERT INTO rate_limit_counters AS c (key, hits, reset_at)
  SELECT ${k}::text, 1, clock_timestamp() + ${w}::integer * interval '1 millisecond' ${where}
  ON CONFLICT (key) DO UPDATE SET
    hits = CASE WHEN c.reset_at <= clock_timestamp() THEN 1 ELSE c.hits + 1 END,
    reset_at = CASE WHEN c.reset_at <= clock_timestamp() THEN EXCLUDED.reset_at ELSE c.reset_at END
  RETURNING hits, extract(epoch FROM reset_at) * 1000 AS reset_ms`;

/** The count of two limits in one statement: the second is counted only when the first is not over. */
const COUNT_TWO = `WITH a AS (${upsert('$1', '$2')}),
  b AS (${upsert('$4', '$5', 'WHERE (SELECT hits FROM a) <= $3')}),
  peek AS (SELECT hits, reset_at FROM rate_limit_counters WHERE key = $4 AND reset_at > clock_timestamp())
  SELECT a.hits AS h0, a.reset_ms AS r0,
    COALESCE((SELECT hits FROM b), (SELECT hits FROM peek), 0) AS h1,
    COALESCE((SELECT reset_ms FROM b), (SELECT extract(epoch FROM reset_at) * 1000 FROM peek)) AS r1
  FROM a`;

/**
 * Rate-limit counters in PostgreSQL (issue 14 item 3): one `UNLOGGED` row per key, counted by an upsert that starts
 * a new window when the last one ended, timed by the database's clock (`clock_timestamp()`), so the nodes agree on
 * windows whatever their own clocks say. A request's limits (per token, per account) are counted in one statement,
 * prepared once per connection: one round trip per request.
 */
export class PostgresRateLimitStore implements RateLimitCounterStore {
  private lastPrune = 0;

  constructor(private readonly db: PostgresDatabase) {}

  async increment(key: string, windowMs: number): Promise<RateLimitHit> {
    const [hit] = await this.count([{ key, windowMs, limit: Number.MAX_SAFE_INTEGER }]);
    return hit as RateLimitHit;
  }

  async get(key: string): Promise<RateLimitHit | undefined> {
    const { rows } = await this.db.query<{ hits: number; reset_at: Date }>('SELECT hits, reset_at FROM rate_limit_counters WHERE key = $1 AND reset_at > clock_timestamp()', [key]);
    const row = rows[0];
    return row && { hits: row.hits, resetAt: row.reset_at };
  }

  async count(checks: ReadonlyArray<RateLimitCheck>): Promise<RateLimitHit[]> {
    this.prune();
    if (checks.length === 1) {
      const [only] = checks as [RateLimitCheck];
      const { rows } = await this.db.query<{ hits: number; reset_ms: string }>(upsert('$1', '$2'), [only.key, only.windowMs], 'unicrm_rate_limit_one');
      const row = rows[0] as { hits: number; reset_ms: string };
      return [{ hits: row.hits, resetAt: new Date(Number(row.reset_ms)) }];
    }
    if (checks.length === 2) {
      const [first, second] = checks as [RateLimitCheck, RateLimitCheck];
      // Times as epoch milliseconds (numeric text): cheaper to read than timestamptz text.
      const { rows } = await this.db.query<{ h0: number; r0: string; h1: number; r1: string | null }>(
        COUNT_TWO,
        [first.key, first.windowMs, first.limit, second.key, second.windowMs],
        'unicrm_rate_limit_two',
      );
      const row = rows[0] as { h0: number; r0: string; h1: number; r1: string | null };
      return [{ hits: row.h0, resetAt: new Date(Number(row.r0)) }, { hits: row.h1, ...(row.r1 !== null && { resetAt: new Date(Number(row.r1)) }) }];
    }
    // More limits than a request has today: one statement each, same rule.
    const hits: RateLimitHit[] = [];
    let over = false;
    for (const check of checks) {
      const hit: RateLimitHit = over ? ((await this.get(check.key)) ?? { hits: 0 }) : ((await this.count([check]))[0] as RateLimitHit);
      hits.push(hit);
      over ||= hit.hits > check.limit;
    }
    return hits;
  }

  /** Deletes windows that ended over a minute ago, at most once a minute, in the background. */
  private prune(): void {
    const now = Date.now();
    if (now - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = now;
    this.db.query(`DELETE FROM rate_limit_counters WHERE reset_at < clock_timestamp() - interval '1 minute'`).catch(() => undefined);
  }
}
