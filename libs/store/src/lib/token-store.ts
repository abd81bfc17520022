import type { ApiTokenRecord, ApiTokenStore } from '@unicrm/model';
import type Database from 'better-sqlite3';
import { databaseChangeStamp, noteDatabaseWrite } from './change-stamp';

interface TokenRow {
  id: string;
  name: string;
  environment_id: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

const toRecord = (row: TokenRow): ApiTokenRecord => ({
  id: row.id,
  name: row.name,
  environmentId: row.environment_id,
  createdAt: row.created_at,
  expiresAt: row.expires_at,
  revokedAt: row.revoked_at,
});
const COLUMNS = 'id, name, environment_id, created_at, expires_at, revoked_at';

/**
 * API tokens in SQLite, kept only as SHA-256 hashes (DESIGN.md §4). {@link changeStamp} tells a cache in front of
 * it when to read again (writes here, and commits of other connections or processes, e.g. `unicrm tokens revoke`).
 */
export class SqliteApiTokenStore implements ApiTokenStore {
  private readonly insertStatement: Database.Statement;
  private readonly findStatement: Database.Statement;
  private readonly countStatement: Database.Statement;
  private readonly listStatement: Database.Statement;
  private readonly revokeStatement: Database.Statement;

  constructor(private readonly db: Database.Database) {
    this.insertStatement = db.prepare(
      'INSERT INTO api_tokens (id, name, environment_id, token_hash, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.findStatement = db.prepare(`SELECT ${COLUMNS} FROM api_tokens WHERE token_hash = ?`);
    this.listStatement = db.prepare(`SELECT ${COLUMNS} FROM api_tokens ORDER BY created_at, id`);
    this.revokeStatement = db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL');
    this.countStatement = db.prepare('SELECT count(*) AS n FROM api_tokens');
  }

  async add(record: ApiTokenRecord, tokenHash: Buffer): Promise<void> {
    this.insertStatement.run(record.id, record.name, record.environmentId, tokenHash, record.createdAt, record.expiresAt, record.revokedAt);
    noteDatabaseWrite(this.db);
  }

  /** See `ApiTokenStore.changeStamp`: {@link databaseChangeStamp} of this store's connection. */
  changeStamp(): number {
    return databaseChangeStamp(this.db);
  }

  async findByHash(tokenHash: Buffer): Promise<ApiTokenRecord | undefined> {
    const row = this.findStatement.get(tokenHash) as TokenRow | undefined;
    return row && toRecord(row);
  }

  async list(): Promise<ApiTokenRecord[]> {
    return (this.listStatement.all() as TokenRow[]).map(toRecord);
  }

  async revoke(id: string, at: string): Promise<boolean> {
    const revoked = this.revokeStatement.run(at, id).changes > 0;
    if (revoked) noteDatabaseWrite(this.db);
    return revoked;
  }

  async count(): Promise<number> {
    return (this.countStatement.get() as { n: number }).n;
  }
}
