import type { AccountStore, IntegratedAccountStatus, StoredAccount } from '@unicrm/model';
import type Database from 'better-sqlite3';
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

/**
 * Integrated accounts in SQLite. The whole `context` is sealed with {@link SecretBox} (the account id
 * as AAD); only `publicContext`, which the caller computed without secrets, is stored in clear.
 */
export class SqliteAccountStore implements AccountStore {
  private readonly insertStatement: Database.Statement;
  private readonly selectStatement: Database.Statement;
  private readonly deleteStatement: Database.Statement;
  private readonly statusStatement: Database.Statement;
  private readonly updateStatement: Database.Statement;

  constructor(
    db: Database.Database,
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
      'UPDATE integrated_accounts SET status = ?, last_error = ?, updated_at = ? WHERE id = ? AND environment_id = ?',
    );
  }

  create(account: StoredAccount): void {
    this.insertStatement.run(this.toRow(account));
  }

  update(account: StoredAccount): boolean {
    return this.updateStatement.run(this.toRow(account)).changes > 0;
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
    if (!row) return undefined;
    return {
      id: row.id,
      environmentId: row.environment_id,
      tenantId: row.tenant_id,
      integration: row.integration,
      status: row.status,
      context: JSON.parse(this.box.open(row.sealed_context, row.id)) as Record<string, unknown>,
      publicContext: JSON.parse(row.public_context) as Record<string, unknown>,
      lastError: row.last_error,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }

  delete(environmentId: string, id: string): boolean {
    return this.deleteStatement.run(id, environmentId).changes > 0;
  }

  setStatus(environmentId: string, id: string, status: IntegratedAccountStatus, lastError: string | null, at: string): void {
    this.statusStatement.run(status, lastError, at, id, environmentId);
  }
}
