import { type DataKeyRecord, type DataKeyTable, RotationInProgressError, type SealedRow, sealedPrefix } from '../keyring';
import type { PostgresDatabase, Queryable } from './database';

/** `pg_try_advisory_lock` key held by a rotation: `unirot` in ASCII. */
export const ROTATION_LOCK = 0x756e69726f74;

/** `LIKE` pattern of the values sealed with `kid` (a key id is hex: nothing to escape). */
const sealedWith = (kid: string) => `${sealedPrefix(kid)}%`;

/** Every row of the PostgreSQL data-key table, oldest first. */
export async function readPostgresDataKeys(db: Queryable): Promise<DataKeyRecord[]> {
  const { rows } = await db.query<DataKeyRecord>('SELECT kid, wrapped, state, created_at, retired_at FROM unicrm_encryption_keys ORDER BY created_at, kid');
  return rows;
}

/**
 * The data-key table and the sealed contexts in PostgreSQL, for `rotateDataKey` while every node serves. The
 * activation takes the active key's row lock, which the nodes' writes hold in share mode (their condition is
 * `... FOR SHARE`): a write sealed with the old key either commits before the activation (and the rotation's pass,
 * which starts after it, re-seals it) or sees the key inactive and is sealed again with the new one.
 */
export class PostgresDataKeyTable implements DataKeyTable {
  constructor(private readonly db: PostgresDatabase) {}

  async readKeys(): Promise<DataKeyRecord[]> {
    return readPostgresDataKeys(this.db);
  }

  /** The master key is not checked here: on PostgreSQL it cannot change under a running process (`keys rotate --master` refuses). */
  async activate(record: Pick<DataKeyRecord, 'kid' | 'wrapped' | 'created_at'>): Promise<void> {
    await this.transaction(async (query) => {
      await query("UPDATE unicrm_encryption_keys SET state = 'previous' WHERE state = 'active'");
      await query("INSERT INTO unicrm_encryption_keys (kid, wrapped, state, created_at) VALUES ($1, $2, 'active', $3)", [record.kid, record.wrapped, record.created_at]);
    });
  }

  async notSealedWith(kid: string, afterId: string, limit: number): Promise<SealedRow[]> {
    const { rows } = await this.db.query<SealedRow>(
      'SELECT id, sealed_context AS sealed FROM integrated_accounts WHERE id > $1 AND sealed_context NOT LIKE $2 ORDER BY id LIMIT $3',
      [afterId, sealedWith(kid), limit],
    );
    return rows;
  }

  async countNotSealedWith(kid: string): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>('SELECT count(*) AS n FROM integrated_accounts WHERE sealed_context NOT LIKE $1', [sealedWith(kid)]);
    return Number(rows[0]?.n ?? 0);
  }

  /** One statement for the batch: an UPDATE joined to the arrays of ids, values read and new values. */
  async reseal(rows: ReadonlyArray<SealedRow & { resealed: string }>): Promise<number> {
    const { rowCount } = await this.db.query(
      `UPDATE integrated_accounts AS a SET sealed_context = u.resealed
       FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, sealed, resealed)
       WHERE a.id = u.id AND a.sealed_context = u.sealed`,
      [rows.map((row) => row.id), rows.map((row) => row.sealed), rows.map((row) => row.resealed)],
    );
    if ((rowCount ?? 0) > 0) this.db.feed.bump();
    return rowCount ?? 0;
  }

  async retire(kid: string, at: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE unicrm_encryption_keys SET state = 'retired', wrapped = NULL, retired_at = $1
       WHERE kid = $2 AND state = 'previous' AND NOT EXISTS (SELECT 1 FROM integrated_accounts WHERE sealed_context LIKE $3)`,
      [at, kid, sealedWith(kid)],
    );
    return (rowCount ?? 0) > 0;
  }

  /** A session advisory lock on a connection of its own, for the whole rotation (dropped if the process dies). */
  async exclusively<T>(work: () => Promise<T>): Promise<T> {
    await this.db.started;
    const client = await this.db.pool.connect();
    try {
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [ROTATION_LOCK]);
      if (!rows[0]?.locked) throw new RotationInProgressError('another node of this PostgreSQL database');
      try {
        return await work();
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [ROTATION_LOCK]);
      }
    } finally {
      client.release();
    }
  }

  private async transaction(work: (query: (text: string, params?: unknown[]) => Promise<unknown>) => Promise<void>): Promise<void> {
    await this.db.started;
    const client = await this.db.pool.connect();
    try {
      await client.query('BEGIN');
      try {
        await work((text, params) => client.query(text, params));
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      }
    } finally {
      client.release();
    }
  }
}
