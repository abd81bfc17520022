import type { ApiTokenRecord, ApiTokenStore } from '@unicrm/model';
import type Database from 'better-sqlite3';

interface TokenRow {
  id: string;
  name: string;
  environment_id: string;
  created_at: string;
}

/** API tokens in SQLite, kept only as SHA-256 hashes (DESIGN.md §4). */
export class SqliteApiTokenStore implements ApiTokenStore {
  private readonly insertStatement: Database.Statement;
  private readonly findStatement: Database.Statement;
  private readonly countStatement: Database.Statement;

  constructor(db: Database.Database) {
    this.insertStatement = db.prepare(
      'INSERT INTO api_tokens (id, name, environment_id, token_hash, created_at) VALUES (?, ?, ?, ?, ?)',
    );
    this.findStatement = db.prepare('SELECT id, name, environment_id, created_at FROM api_tokens WHERE token_hash = ?');
    this.countStatement = db.prepare('SELECT count(*) AS n FROM api_tokens');
  }

  add(record: ApiTokenRecord, tokenHash: Buffer): void {
    this.insertStatement.run(record.id, record.name, record.environmentId, tokenHash, record.createdAt);
  }

  findByHash(tokenHash: Buffer): ApiTokenRecord | undefined {
    const row = this.findStatement.get(tokenHash) as TokenRow | undefined;
    return row && { id: row.id, name: row.name, environmentId: row.environment_id, createdAt: row.created_at };
  }

  count(): number {
    return (this.countStatement.get() as { n: number }).n;
  }
}
