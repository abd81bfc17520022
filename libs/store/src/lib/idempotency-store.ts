import type { IdempotencyRecord, IdempotencyStore } from '@unicrm/model';
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
}

/**
 * Idempotency records in SQLite (WAL): a claim is one `INSERT ... ON CONFLICT DO NOTHING`, so two requests
 * with the same key (in one process or several) cannot both run. Answers are committed before they are
 * sent, so a crash after the answer leaves a record to replay.
 */
export class SqliteIdempotencyStore implements IdempotencyStore {
  private readonly insert: Database.Statement;
  private readonly select: Database.Statement;
  private readonly completeStatement: Database.Statement;
  private readonly releaseStatement: Database.Statement;
  private readonly pruneStatement: Database.Statement;
  private readonly ambiguousStatement: Database.Statement;
  private readonly reclaimStatement: Database.Statement;

  constructor(db: Database.Database) {
    this.insert = db.prepare(
      `INSERT INTO idempotency_records (scope, state, fingerprint, created_at, expires_at) VALUES (?, 'in_flight', ?, ?, ?)
       ON CONFLICT (scope) DO NOTHING`,
    );
    this.select = db.prepare('SELECT * FROM idempotency_records WHERE scope = ?');
    this.completeStatement = db.prepare(
      `UPDATE idempotency_records SET state = 'done', status_code = ?, body = ?, raw_text = ?, headers = ? WHERE scope = ?`,
    );
    this.releaseStatement = db.prepare('DELETE FROM idempotency_records WHERE scope = ?');
    this.pruneStatement = db.prepare('DELETE FROM idempotency_records WHERE expires_at <= ?');
    this.ambiguousStatement = db.prepare(`UPDATE idempotency_records SET state = 'ambiguous', created_at = ? WHERE scope = ?`);
    this.reclaimStatement = db.prepare(`UPDATE idempotency_records SET state = 'in_flight' WHERE scope = ? AND state = 'ambiguous'`);
  }

  claim(scope: string, fingerprint: string, createdAt: string, expiresAt: string): IdempotencyRecord | undefined {
    if (this.insert.run(scope, fingerprint, createdAt, expiresAt).changes > 0) return undefined;
    const row = this.select.get(scope) as Row | undefined;
    if (!row) return this.claim(scope, fingerprint, createdAt, expiresAt);
    return {
      state: row.state,
      fingerprint: row.fingerprint,
      statusCode: row.status_code,
      body: row.body,
      rawText: row.raw_text,
      headers: JSON.parse(row.headers) as Record<string, string>,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
    };
  }

  complete(scope: string, answer: { statusCode: number; body: string; rawText: string | null; headers: Record<string, string> }): void {
    this.completeStatement.run(answer.statusCode, answer.body, answer.rawText, JSON.stringify(answer.headers), scope);
  }

  release(scope: string): void {
    this.releaseStatement.run(scope);
  }

  markAmbiguous(scope: string, at: string): void {
    this.ambiguousStatement.run(at, scope);
  }

  reclaim(scope: string): boolean {
    return this.reclaimStatement.run(scope).changes > 0;
  }

  prune(now: string): number {
    return this.pruneStatement.run(now).changes;
  }
}
