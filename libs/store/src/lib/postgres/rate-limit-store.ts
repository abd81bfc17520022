import type { RateLimitCheck, RateLimitCounterStore, RateLimitHit } from '@unicrm/model';
import type { PostgresDatabase } from './database';

/** Expired windows are deleted at most this often (ms). */
const PRUNE_EVERY_MS = 60_000;

/**
 * The upsert of one counter (`k` its key, `w` its window in ms) by `n` hits at once, as a CTE body: a new window when
 * the last one ended.
 */
const upsertBy = (k: string, w: string, n: string, from = '') => `INSERT INTO rate_limit_counters AS c (key, hits, reset_at)
  SELECT ${k}::text, ${n}, clock_timestamp() + ${w}::integer * interval '1 millisecond' ${from}
  ON CONFLICT (key) DO UPDATE SET
    hits = CASE WHEN c.reset_at <= clock_timestamp() THEN EXCLUDED.hits ELSE c.hits + EXCLUDED.hits END,
    reset_at = CASE WHEN c.reset_at <= clock_timestamp() THEN EXCLUDED.reset_at ELSE c.reset_at END
  RETURNING hits, extract(epoch FROM reset_at) * 1000 AS reset_ms`;

/**
 * The count of two limits for `$6` requests in one statement: the first counter moves by `$6`; of those requests, the
 * `m` whose own count is within the first limit (`$3`) are counted against the second counter, which moves by `m`.
 * Request `i` (0-based) then has first count `h0 - $6 + 1 + i`, and, when `i < m`, second count `h1 - m + 1 + i`;
 * a request over the first limit reads the second counter without moving it.
 */
const COUNT_TWO = `WITH a AS (${upsertBy('$1', '$2', '$6::integer')}),
  m AS (SELECT LEAST(GREATEST($3::bigint - (a.hits - $6::integer), 0), $6::integer)::integer AS m FROM a),
  b AS (${upsertBy('$4', '$5', 'm.m', 'FROM m WHERE m.m > 0')}),
  peek AS (SELECT hits, reset_at FROM rate_limit_counters WHERE key = $4 AND reset_at > clock_timestamp())
  SELECT a.hits AS h0, a.reset_ms AS r0, (SELECT m FROM m) AS m,
    COALESCE((SELECT hits FROM b), (SELECT hits FROM peek), 0) AS h1,
    COALESCE((SELECT reset_ms FROM b), (SELECT extract(epoch FROM reset_at) * 1000 FROM peek)) AS r1
  FROM a`;

/** Requests waiting for the same two counters, counted together at the end of the event-loop turn. */
interface PendingGroup {
  checks: readonly [RateLimitCheck, RateLimitCheck];
  waiters: Array<{ resolve: (hits: RateLimitHit[]) => void; reject: (error: unknown) => void }>;
}

/**
 * Rate-limit counters in PostgreSQL (issue 14 item 3): one `UNLOGGED` row per key, counted by an upsert that starts
 * a new window when the last one ended, timed by the database's clock (`clock_timestamp()`), so the nodes agree on
 * windows whatever their own clocks say. A request's limits (per token, per account) are counted in one statement,
 * prepared once per connection, shared by the requests for the same counters in one event-loop turn.
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
      const { rows } = await this.db.query<{ hits: number; reset_ms: string }>(upsertBy('$1', '$2', '1'), [only.key, only.windowMs], 'unicrm_rate_limit_one');
      const row = rows[0] as { hits: number; reset_ms: string };
      return [{ hits: row.hits, resetAt: new Date(Number(row.reset_ms)) }];
    }
    if (checks.length === 2) return this.countTwo(checks as readonly [RateLimitCheck, RateLimitCheck]);
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

  /** Requests of this event-loop turn by their two counters (and windows and first limit). */
  private pending = new Map<string, PendingGroup>();

  /**
   * Counts a request's two limits together with the other requests for the same counters made in this event-loop
   * turn: one statement for all of them ({@link COUNT_TWO}), each request getting its own counts, exactly as if they
   * had been counted one by one in arrival order (the counters stay exact across nodes: each statement moves them
   * atomically). Under load this turns one round trip per request into one per turn and pair of counters.
   */
  private countTwo(checks: readonly [RateLimitCheck, RateLimitCheck]): Promise<RateLimitHit[]> {
    const [first, second] = checks;
    const key = JSON.stringify([first.key, first.windowMs, first.limit, second.key, second.windowMs]);
    return new Promise((resolve, reject) => {
      let group = this.pending.get(key);
      if (!group) {
        group = { checks, waiters: [] };
        this.pending.set(key, group);
        if (this.pending.size === 1) setImmediate(() => this.flush());
      }
      group.waiters.push({ resolve, reject });
    });
  }

  /** Sends every pending group's statement (concurrently, each on its own pooled connection). */
  private flush(): void {
    const groups = [...this.pending.values()];
    this.pending = new Map();
    for (const group of groups) void this.countGroup(group);
  }

  private async countGroup({ checks: [first, second], waiters }: PendingGroup): Promise<void> {
    const n = waiters.length;
    try {
      // Times as epoch milliseconds (numeric text): cheaper to read than timestamptz text.
      const { rows } = await this.db.query<{ h0: number; r0: string; m: number; h1: number; r1: string | null }>(
        COUNT_TWO,
        [first.key, first.windowMs, first.limit, second.key, second.windowMs, n],
        'unicrm_rate_limit_two_n',
      );
      const row = rows[0] as { h0: number; r0: string; m: number; h1: number; r1: string | null };
      const r0 = new Date(Number(row.r0));
      waiters.forEach((waiter, i) => {
        const h1 = i < row.m ? row.h1 - row.m + 1 + i : row.h1;
        waiter.resolve([{ hits: row.h0 - n + 1 + i, resetAt: r0 }, { hits: h1, ...(row.r1 !== null && { resetAt: new Date(Number(row.r1)) }) }]);
      });
    } catch (error) {
      for (const waiter of waiters) waiter.reject(error);
    }
  }

  /** Deletes windows that ended over a minute ago, at most once a minute, in the background. */
  private prune(): void {
    const now = Date.now();
    if (now - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = now;
    this.db.query(`DELETE FROM rate_limit_counters WHERE reset_at < clock_timestamp() - interval '1 minute'`).catch(() => undefined);
  }
}
