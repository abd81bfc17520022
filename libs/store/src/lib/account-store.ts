import {
  type AccountListQuery,
  type AccountPage,
  type AccountStore,
  EncryptionKeyChangedError,
  type IntegratedAccountStatus,
  type OutboxEvent,
  type StoredAccount,
} from '@unicrm/model';
import type Database from 'better-sqlite3';
import { databaseChangeStamp, noteDatabaseWrite } from './change-stamp';
import { SqliteOutbox } from './connect-store';
import { KEY_CHECK_ROW, keyFits } from './database';
import type { SecretBox } from './secret-box';
import { type AccountRow, accountOfRow, accountRow, DecryptedContexts, decodeCursor, encodeCursor, type KeyState } from './account-rows';

/**
 * Integrated accounts in SQLite. The whole `context` is sealed with {@link SecretBox} (the account id
 * as AAD); only `publicContext`, which the caller computed without secrets, is stored in clear.
 * Decrypted contexts are cached by their ciphertext: a changed row (a new seal has a new IV, so a new
 * ciphertext) is decrypted again, whichever process changed it; an unchanged one costs no AES or JSON work.
 * {@link changeStamp} tells a cache in front of it when to read again (writes here, and commits of other
 * connections or processes).
 *
 * A row that cannot be read (its sealed context does not open, its public context is not JSON) is returned with
 * `fault` set instead of throwing, so that one bad row neither hides the others from a listing nor blocks its own
 * deletion. Writes are conditional on the data directory's key check being the one this store verified (one SQL
 * statement): after another process rotated the key, a write here is refused ({@link EncryptionKeyChangedError})
 * instead of sealing a secret with a key nobody else holds.
 */
export class SqliteAccountStore implements AccountStore {
  private readonly insertStatement: Database.Statement;
  private readonly selectStatement: Database.Statement;
  private readonly deleteStatement: Database.Statement;
  private readonly statusStatement: Database.Statement;
  private readonly updateStatement: Database.Statement;
  private readonly listStatements = new Map<string, Database.Statement>();
  private readonly keyCheckStatement: Database.Statement;
  private readonly existsStatement: Database.Statement;
  private readonly decrypted: DecryptedContexts;
  private readonly outbox: SqliteOutbox;
  /** The key check (`meta.key_check` ciphertext) this store's box was seen to open: writes require it unchanged. */
  private keyCheck: string | undefined;

  constructor(
    private readonly db: Database.Database,
    private readonly box: SecretBox,
  ) {
    this.decrypted = new DecryptedContexts(box);
    this.outbox = new SqliteOutbox(db);
    // Both writes happen only while the key check is the one verified: a rotation commits a new one.
    const sameKey = `EXISTS (SELECT 1 FROM meta WHERE key = '${KEY_CHECK_ROW}' AND value = @key_check)`;
    this.insertStatement = db.prepare(
      `INSERT INTO integrated_accounts (id, environment_id, tenant_id, integration, status, public_context, sealed_context, last_error, created_at, updated_at)
       SELECT @id, @environment_id, @tenant_id, @integration, @status, @public_context, @sealed_context, @last_error, @created_at, @updated_at
       WHERE ${sameKey}`,
    );
    this.selectStatement = db.prepare('SELECT * FROM integrated_accounts WHERE id = ? AND environment_id = ?');
    this.existsStatement = db.prepare('SELECT 1 FROM integrated_accounts WHERE id = ? AND environment_id = ?').pluck();
    this.deleteStatement = db.prepare('DELETE FROM integrated_accounts WHERE id = ? AND environment_id = ?');
    this.updateStatement = db.prepare(
      `UPDATE integrated_accounts SET tenant_id = @tenant_id, status = @status, public_context = @public_context,
         sealed_context = @sealed_context, last_error = @last_error, updated_at = @updated_at
       WHERE id = @id AND environment_id = @environment_id AND ${sameKey}`,
    );
    this.keyCheckStatement = db.prepare('SELECT value FROM meta WHERE key = ?').pluck();
    this.statusStatement = db.prepare(
      `UPDATE integrated_accounts SET status = ?, last_error = ?, updated_at = ?
       WHERE id = ? AND environment_id = ? AND (? IS NULL OR updated_at = ?)`,
    );
  }

  /** @throws EncryptionKeyChangedError when the data directory's key is no longer this store's (nothing written) */
  async create(account: StoredAccount, events?: readonly OutboxEvent[]): Promise<void> {
    const row = this.toRow(account);
    if (this.withEvents(events, () => this.insertStatement.run({ ...row, key_check: this.verifiedKeyCheck() }).changes) === 0) {
      // Only a changed key check stops the insert (a duplicate id throws): verify again, and once more if it still fits.
      this.keyCheck = undefined;
      if (this.withEvents(events, () => this.insertStatement.run({ ...row, key_check: this.verifiedKeyCheck() }).changes) === 0) throw this.keyChanged();
    }
    noteDatabaseWrite(this.db);
  }

  /** @throws EncryptionKeyChangedError when the data directory's key is no longer this store's (nothing written) */
  async update(account: StoredAccount, events?: readonly OutboxEvent[]): Promise<boolean> {
    const row = this.toRow(account);
    let changed = this.withEvents(events, () => this.updateStatement.run({ ...row, key_check: this.verifiedKeyCheck() }).changes) > 0;
    if (!changed && this.existsStatement.get(account.id, account.environmentId) !== undefined) {
      this.keyCheck = undefined;
      changed = this.withEvents(events, () => this.updateStatement.run({ ...row, key_check: this.verifiedKeyCheck() }).changes) > 0;
      if (!changed && this.existsStatement.get(account.id, account.environmentId) !== undefined) throw this.keyChanged();
    }
    if (changed) noteDatabaseWrite(this.db);
    return changed;
  }

  /**
   * Runs one write and, when it changed a row, writes `events` to the outbox, in one transaction (issue 17: an event
   * is never lost nor sent for a change that did not happen).
   * @returns the write's count of changed rows
   */
  private withEvents(events: readonly OutboxEvent[] | undefined, write: () => number): number {
    if (!events || events.length === 0) return write();
    return this.db
      .transaction(() => {
        const changes = write();
        if (changes > 0) this.outbox.write(events);
        return changes;
      })
      .immediate();
  }

  /**
   * The key check this store's box opens, read and verified once (again after a refused write).
   * @throws EncryptionKeyChangedError when the box no longer opens the data directory's key check
   */
  private verifiedKeyCheck(): string {
    if (this.keyCheck !== undefined) return this.keyCheck;
    if (!keyFits(this.db, this.box)) throw this.keyChanged();
    this.keyCheck = this.keyCheckStatement.get(KEY_CHECK_ROW) as string;
    return this.keyCheck;
  }

  private keyChanged(): EncryptionKeyChangedError {
    return new EncryptionKeyChangedError(`the database ${this.db.name}`);
  }

  /** See `AccountStore.changeStamp`: {@link databaseChangeStamp} of this store's connection. */
  changeStamp(): number {
    return databaseChangeStamp(this.db);
  }

  private toRow(account: StoredAccount): AccountRow {
    return accountRow(account, this.box);
  }

  async get(environmentId: string, id: string): Promise<StoredAccount | undefined> {
    const row = this.selectStatement.get(id, environmentId) as AccountRow | undefined;
    return row && this.fromRow(row);
  }

  async list(environmentId: string, query: AccountListQuery): Promise<AccountPage> {
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
    const keyState: KeyState = {};
    return { accounts: page.map((row) => this.fromRow(row, keyState)), nextCursor: more && last ? encodeCursor(last) : null };
  }

  /** @param keyState whether this store's key still opens the key check, asked once per read (only after a failure) */
  private fromRow(row: AccountRow, keyState: KeyState = {}): StoredAccount {
    return accountOfRow(row, this.decrypted.open(row), () => (keyState.fits ??= keyFits(this.db, this.box)));
  }

  async delete(environmentId: string, id: string, events?: readonly OutboxEvent[]): Promise<boolean> {
    this.decrypted.forget(id);
    const deleted = this.withEvents(events, () => this.deleteStatement.run(id, environmentId).changes) > 0;
    if (deleted) noteDatabaseWrite(this.db);
    return deleted;
  }

  async setStatus(
    environmentId: string,
    id: string,
    status: IntegratedAccountStatus,
    lastError: string | null,
    at: string,
    ifUpdatedAt?: string,
    events?: readonly OutboxEvent[],
  ): Promise<boolean> {
    const changes = this.withEvents(events, () => this.statusStatement.run(status, lastError, at, id, environmentId, ifUpdatedAt ?? null, ifUpdatedAt ?? null).changes);
    if (changes > 0) noteDatabaseWrite(this.db);
    return changes > 0;
  }
}
