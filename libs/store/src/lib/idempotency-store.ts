import type { IdempotencyLease, IdempotencyRecord, IdempotencyStore } from '@unicrm/model';
import type Database from 'better-sqlite3';

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
 * Idempotency records in SQLite (WAL): a claim is one `INSERT ... ON CONFLICT DO NOTHING`, so two requests
 * with the same key (in one process or several) cannot both run; every later write is one `UPDATE`/`DELETE`
 * conditional on the caller's claim token, so two requests that read the same abandoned record cannot both take
 * it over, and a request that lost its key cannot overwrite its new holder's record. Answers are committed before
 * they are sent, so a crash after the answer leaves a record to replay.
 */
export class SqliteIdempotencyStore implements IdempotencyStore {
  private readonly insert: Database.Statement;
  private readonly select: Database.Statement;
  private readonly completeStatement: Database.Statement;
  private readonly releaseStatement: Database.Statement;
  private readonly pruneStatement: Database.Statement;
  private readonly ambiguousStatement: Database.Statement;
  private readonly takeOverStatement: Database.Statement;
  private readonly renewStatement: Database.Statement;
  private readonly renewAll: (holds: ReadonlyArray<{ scope: string; token: string }>, leaseExpiresAt: string) => number;

  constructor(db: Database.Database) {
    this.insert = db.prepare(
      `INSERT INTO idempotency_records (scope, state, fingerprint, created_at, expires_at, claim_token, lease_expires_at)
       VALUES (?, 'in_flight', ?, ?, ?, ?, ?)
       ON CONFLICT (scope) DO NOTHING`,
    );
    this.select = db.prepare('SELECT * FROM idempotency_records WHERE scope = ?');
    this.completeStatement = db.prepare(
      `UPDATE idempotency_records SET state = 'done', status_code = ?, body = ?, raw_text = ?, headers = ?
       WHERE scope = ? AND claim_token = ?`,
    );
    this.releaseStatement = db.prepare('DELETE FROM idempotency_records WHERE scope = ? AND claim_token = ?');
    this.pruneStatement = db.prepare('DELETE FROM idempotency_records WHERE expires_at <= ?');
    this.ambiguousStatement = db.prepare(`UPDATE idempotency_records SET state = 'ambiguous', created_at = ? WHERE scope = ? AND claim_token = ?`);
    this.takeOverStatement = db.prepare(
      `UPDATE idempotency_records SET state = 'in_flight', claim_token = ?, lease_expires_at = ?
       WHERE scope = ? AND claim_token = ? AND (state = 'ambiguous' OR (state = 'in_flight' AND lease_expires_at <= ?))`,
    );
    this.renewStatement = db.prepare(
      `UPDATE idempotency_records SET lease_expires_at = ? WHERE scope = ? AND claim_token = ? AND state = 'in_flight'`,
    );
    // One transaction for all of a process's renewals: one commit, whatever the number of keys held.
    this.renewAll = db.transaction((holds: ReadonlyArray<{ scope: string; token: string }>, leaseExpiresAt: string) => {
      let renewed = 0;
      for (const { scope, token } of holds) renewed += this.renewStatement.run(leaseExpiresAt, scope, token).changes;
      return renewed;
    });
  }

  async claim(scope: string, fingerprint: string, createdAt: string, expiresAt: string, lease: IdempotencyLease): Promise<IdempotencyRecord | undefined> {
    return this.claimNow(scope, fingerprint, createdAt, expiresAt, lease);
  }

  private claimNow(scope: string, fingerprint: string, createdAt: string, expiresAt: string, lease: IdempotencyLease): IdempotencyRecord | undefined {
    if (this.insert.run(scope, fingerprint, createdAt, expiresAt, lease.token, lease.expiresAt).changes > 0) return undefined;
    const row = this.select.get(scope) as Row | undefined;
    // Removed between the insert and the read (released by its holder): claim again.
    if (!row) return this.claimNow(scope, fingerprint, createdAt, expiresAt, lease);
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

  async renew(holds: ReadonlyArray<{ scope: string; token: string }>, leaseExpiresAt: string): Promise<number> {
    return holds.length === 0 ? 0 : this.renewAll(holds, leaseExpiresAt);
  }

  async complete(scope: string, token: string, answer: { statusCode: number; body: string; rawText: string | null; headers: Record<string, string> }): Promise<boolean> {
    return this.completeStatement.run(answer.statusCode, answer.body, answer.rawText, JSON.stringify(answer.headers), scope, token).changes > 0;
  }

  async release(scope: string, token: string): Promise<boolean> {
    return this.releaseStatement.run(scope, token).changes > 0;
  }

  async markAmbiguous(scope: string, token: string, at: string): Promise<boolean> {
    return this.ambiguousStatement.run(at, scope, token).changes > 0;
  }

  async takeOver(scope: string, expectedToken: string, lease: IdempotencyLease, now: string): Promise<boolean> {
    return this.takeOverStatement.run(lease.token, lease.expiresAt, scope, expectedToken, now).changes > 0;
  }

  async prune(now: string): Promise<number> {
    return this.pruneStatement.run(now).changes;
  }
}
