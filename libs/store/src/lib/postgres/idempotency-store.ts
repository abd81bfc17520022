import type { IdempotencyLease, IdempotencyRecord, IdempotencyStore } from '@unicrm/model';
import type { PostgresDatabase } from './database';

interface Row {
  state: 'in_flight' | 'done' | 'ambiguous';
  fingerprint: string;
  status_code: number | null;
  body: string | null;
  raw_text: string | null;
  headers: string;
  created_at: string;
  expires_at: string;
  claim_token: string;
  lease_expires_at: string;
}

/**
 * Idempotency records in PostgreSQL, with the SQLite store's rules across nodes: a claim is one
 * `INSERT ... ON CONFLICT DO NOTHING` (two nodes cannot both hold a key), every later write one statement conditional
 * on the caller's claim token (two nodes that read the same abandoned record cannot both take it over). Leases are
 * compared with the times the nodes write, so the nodes' clocks must agree (NTP; docs/deployment.md).
 */
export class PostgresIdempotencyStore implements IdempotencyStore {
  constructor(private readonly db: PostgresDatabase) {}

  async claim(scope: string, fingerprint: string, createdAt: string, expiresAt: string, lease: IdempotencyLease): Promise<IdempotencyRecord | undefined> {
    for (;;) {
      const inserted = await this.db.query(
        `INSERT INTO idempotency_records (scope, state, fingerprint, created_at, expires_at, claim_token, lease_expires_at)
         VALUES ($1, 'in_flight', $2, $3, $4, $5, $6) ON CONFLICT (scope) DO NOTHING`,
        [scope, fingerprint, createdAt, expiresAt, lease.token, lease.expiresAt],
      );
      if ((inserted.rowCount ?? 0) > 0) return undefined;
      const { rows } = await this.db.query<Row>('SELECT * FROM idempotency_records WHERE scope = $1', [scope]);
      const row = rows[0];
      // Removed between the insert and the read (released by its holder): claim again.
      if (!row) continue;
      return {
        state: row.state,
        fingerprint: row.fingerprint,
        statusCode: row.status_code,
        body: row.body,
        rawText: row.raw_text,
        headers: JSON.parse(row.headers) as Record<string, string>,
        createdAt: row.created_at,
        expiresAt: row.expires_at,
        claimToken: row.claim_token,
        leaseExpiresAt: row.lease_expires_at,
      };
    }
  }

  async renew(holds: ReadonlyArray<{ scope: string; token: string }>, leaseExpiresAt: string): Promise<number> {
    if (holds.length === 0) return 0;
    // One statement for all of a node's renewals, whatever the number of keys held.
    const { rowCount } = await this.db.query(
      `UPDATE idempotency_records AS r SET lease_expires_at = $1
       FROM unnest($2::text[], $3::text[]) AS h(scope, token)
       WHERE r.scope = h.scope AND r.claim_token = h.token AND r.state = 'in_flight'`,
      [leaseExpiresAt, holds.map((h) => h.scope), holds.map((h) => h.token)],
    );
    return rowCount ?? 0;
  }

  async complete(scope: string, token: string, answer: { statusCode: number; body: string; rawText: string | null; headers: Record<string, string> }): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE idempotency_records SET state = 'done', status_code = $1, body = $2, raw_text = $3, headers = $4 WHERE scope = $5 AND claim_token = $6`,
      [answer.statusCode, answer.body, answer.rawText, JSON.stringify(answer.headers), scope, token],
    );
    return (rowCount ?? 0) > 0;
  }

  async release(scope: string, token: string): Promise<boolean> {
    const { rowCount } = await this.db.query('DELETE FROM idempotency_records WHERE scope = $1 AND claim_token = $2', [scope, token]);
    return (rowCount ?? 0) > 0;
  }

  async markAmbiguous(scope: string, token: string, at: string): Promise<boolean> {
    const { rowCount } = await this.db.query(`UPDATE idempotency_records SET state = 'ambiguous', created_at = $1 WHERE scope = $2 AND claim_token = $3`, [at, scope, token]);
    return (rowCount ?? 0) > 0;
  }

  async takeOver(scope: string, expectedToken: string, lease: IdempotencyLease, now: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE idempotency_records SET state = 'in_flight', claim_token = $1, lease_expires_at = $2
       WHERE scope = $3 AND claim_token = $4 AND (state = 'ambiguous' OR (state = 'in_flight' AND lease_expires_at <= $5))`,
      [lease.token, lease.expiresAt, scope, expectedToken, now],
    );
    return (rowCount ?? 0) > 0;
  }

  async prune(now: string): Promise<number> {
    const { rowCount } = await this.db.query('DELETE FROM idempotency_records WHERE expires_at <= $1', [now]);
    return rowCount ?? 0;
  }
}
