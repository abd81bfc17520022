import type { AccountListQuery, AccountPage, AccountStore, IntegratedAccountStatus, StoredAccount } from '@unicrm/model';
import type Database from 'better-sqlite3';
import { databaseChangeStamp, noteDatabaseWrite } from './change-stamp';
import type { SecretBox } from './secret-box';

interface AccountRow {
  id: string;
  environment_id: string;
  tenant_id: string;
  integration: string;
  status: IntegratedAccountStatus;
  public_context: string;
  sealed_context: string;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

/** Decrypted contexts kept in memory, keyed by account id, with the ciphertext they came from. */
const DECRYPTED_CACHE_SIZE = 10_000;

function encodeCursor(row: Pick<AccountRow, 'created_at' | 'id'>): string {
  return Buffer.from(JSON.stringify([row.created_at, row.id]), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): [string, string] {
  const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
  if (!Array.isArray(value) || value.length !== 2 || !value.every((v) => typeof v === 'string')) throw new Error('bad cursor');
  return value as [string, string];
}

/**
 * Integrated accounts in SQLite. The whole `context` is sealed with {@link SecretBox} (the account id
 * as AAD); only `publicContext`, which the caller computed without secrets, is stored in clear.
 * Decrypted contexts are cached by their ciphertext: a changed row (a new seal has a new IV, so a new
 * ciphertext) is decrypted again, whichever process changed it; an unchanged one costs no AES or JSON work.
 * {@link changeStamp} tells a cache in front of it when to read again (writes here, and commits of other
 * connections or processes).
 */
export class SqliteAccountStore implements AccountStore {
  private readonly insertStatement: Database.Statement;
  private readonly selectStatement: Database.Statement;
  private readonly deleteStatement: Database.Statement;
  private readonly statusStatement: Database.Statement;
  private readonly updateStatement: Database.Statement;
  private readonly listStatements = new Map<string, Database.Statement>();
  private readonly decrypted = new Map<string, { sealed: string; context: Record<string, unknown> }>();

  constructor(
    private readonly db: Database.Database,
    private readonly box: SecretBox,
  ) {
    this.insertStatement = db.prepare(
      `INSERT INTO integrated_accounts (id, environment_id, tenant_id, integration, status, public_context, sealed_context, last_error, created_at, updated_at)
       VALUES (@id, @environment_id, @tenant_id, @integration, @status, @public_context, @sealed_context, @last_error, @created_at, @updated_at)`,
    );
    this.selectStatement = db.prepare('SELECT * FROM integrated_accounts WHERE id = ? AND environment_id = ?');
    this.deleteStatement = db.prepare('DELETE FROM integrated_accounts WHERE id = ? AND environment_id = ?');
    this.updateStatement = db.prepare(
      `UPDATE integrated_accounts SET tenant_id = @tenant_id, status = @status, public_context = @public_context,
         sealed_context = @sealed_context, last_error = @last_error, updated_at = @updated_at
       WHERE id = @id AND environment_id = @environment_id`,
    );
    this.statusStatement = db.prepare(
      `UPDATE integrated_accounts SET status = ?, last_error = ?, updated_at = ?
       WHERE id = ? AND environment_id = ? AND (? IS NULL OR updated_at = ?)`,
    );
  }

  create(account: StoredAccount): void {
    this.insertStatement.run(this.toRow(account));
    noteDatabaseWrite(this.db);
  }

  update(account: StoredAccount): boolean {
    const changed = this.updateStatement.run(this.toRow(account)).changes > 0;
    if (changed) noteDatabaseWrite(this.db);
    return changed;
  }

  /** See `AccountStore.changeStamp`: {@link databaseChangeStamp} of this store's connection. */
  changeStamp(): number {
    return databaseChangeStamp(this.db);
  }

  private toRow(account: StoredAccount): AccountRow {
    return {
      id: account.id,
      environment_id: account.environmentId,
      tenant_id: account.tenantId,
      integration: account.integration,
      status: account.status,
      public_context: JSON.stringify(account.publicContext),
      sealed_context: this.box.seal(JSON.stringify(account.context), account.id),
      last_error: account.lastError,
      created_at: account.createdAt,
      updated_at: account.updatedAt,
    };
  }

  get(environmentId: string, id: string): StoredAccount | undefined {
    const row = this.selectStatement.get(id, environmentId) as AccountRow | undefined;
    return row && this.fromRow(row);
  }

  list(environmentId: string, query: AccountListQuery): AccountPage {
    const where = ['environment_id = @environmentId'];
    const params: Record<string, unknown> = { environmentId, limit: query.limit + 1 };
    if (query.tenantId !== undefined) {
      where.push('tenant_id = @tenantId');
      params.tenantId = query.tenantId;
    }
    if (query.status !== undefined) {
      where.push('status = @status');
      params.status = query.status;
    }
    if (query.integration !== undefined) {
      where.push('integration = @integration');
      params.integration = query.integration;
    }
    if (query.cursor !== undefined) {
      const [createdAt, id] = decodeCursor(query.cursor);
      where.push('(created_at > @afterCreated OR (created_at = @afterCreated AND id > @afterId))');
      params.afterCreated = createdAt;
      params.afterId = id;
    }
    const sql = `SELECT * FROM integrated_accounts WHERE ${where.join(' AND ')} ORDER BY created_at, id LIMIT @limit`;
    let statement = this.listStatements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.listStatements.set(sql, statement);
    }
    const rows = statement.all(params) as AccountRow[];
    const more = rows.length > query.limit;
    const page = more ? rows.slice(0, query.limit) : rows;
    const last = page[page.length - 1];
    return { accounts: page.map((row) => this.fromRow(row)), nextCursor: more && last ? encodeCursor(last) : null };
  }

  private context(row: AccountRow): Record<string, unknown> {
    const cached = this.decrypted.get(row.id);
    if (cached && cached.sealed === row.sealed_context) return cached.context;
    const context = JSON.parse(this.box.open(row.sealed_context, row.id)) as Record<string, unknown>;
    if (this.decrypted.size >= DECRYPTED_CACHE_SIZE) this.decrypted.clear();
    this.decrypted.set(row.id, { sealed: row.sealed_context, context });
    return context;
  }

  private fromRow(row: AccountRow): StoredAccount {
    return {
      id: row.id,
      environmentId: row.environment_id,
      tenantId: row.tenant_id,
      integration: row.integration,
      status: row.status,
      context: this.context(row),
      publicContext: JSON.parse(row.public_context) as Record<string, unknown>,
      lastError: row.last_error,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }

  delete(environmentId: string, id: string): boolean {
    this.decrypted.delete(id);
    const deleted = this.deleteStatement.run(id, environmentId).changes > 0;
    if (deleted) noteDatabaseWrite(this.db);
    return deleted;
  }

  setStatus(environmentId: string, id: string, status: IntegratedAccountStatus, lastError: string | null, at: string, ifUpdatedAt?: string): void {
    const changes = this.statusStatement.run(status, lastError, at, id, environmentId, ifUpdatedAt ?? null, ifUpdatedAt ?? null).changes;
    if (changes > 0) noteDatabaseWrite(this.db);
  }
}
