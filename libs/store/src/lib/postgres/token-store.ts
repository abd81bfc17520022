import type { ApiTokenRecord, ApiTokenStore } from '@unicrm/model';
import type { PostgresDatabase } from './database';

interface TokenRow {
  id: string;
  name: string;
  environment_id: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

const COLUMNS = 'id, name, environment_id, created_at, expires_at, revoked_at';
const toRecord = (row: TokenRow): ApiTokenRecord => ({
  id: row.id,
  name: row.name,
  environmentId: row.environment_id,
  createdAt: row.created_at,
  expiresAt: row.expires_at,
  revokedAt: row.revoked_at,
});

/**
 * API tokens in PostgreSQL, kept only as SHA-256 hashes, as in the SQLite store. {@link changeStamp} is the node's
 * change feed (`PostgresChangeFeed`): a token revoked on any node is read again here within the feed's bound.
 */
export class PostgresApiTokenStore implements ApiTokenStore {
  constructor(
    private readonly db: PostgresDatabase,
      ) {}

  async add(record: ApiTokenRecord, tokenHash: Buffer): Promise<void> {
    await this.db.query(`INSERT INTO api_tokens (${COLUMNS}, token_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
      record.id,
      record.name,
      record.environmentId,
      record.createdAt,
      record.expiresAt,
      record.revokedAt,
      tokenHash,
    ]);
    this.db.feed.bump();
  }

  async findByHash(tokenHash: Buffer): Promise<ApiTokenRecord | undefined> {
    const { rows } = await this.db.query<TokenRow>(`SELECT ${COLUMNS} FROM api_tokens WHERE token_hash = $1`, [tokenHash]);
    return rows[0] && toRecord(rows[0]);
  }

  async list(): Promise<ApiTokenRecord[]> {
    const { rows } = await this.db.query<TokenRow>(`SELECT ${COLUMNS} FROM api_tokens ORDER BY created_at, id`);
    return rows.map(toRecord);
  }

  async revoke(id: string, at: string): Promise<boolean> {
    const { rowCount } = await this.db.query('UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [at, id]);
    const revoked = (rowCount ?? 0) > 0;
    if (revoked) this.db.feed.bump();
    return revoked;
  }

  async count(): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>('SELECT count(*) AS n FROM api_tokens');
    return Number(rows[0]?.n ?? 0);
  }

  /** See `ApiTokenStore.changeStamp`: the node's change feed. */
  changeStamp(): number {
    return this.db.feed.current();
  }
}
