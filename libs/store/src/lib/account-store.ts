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
import { keyFits } from './database';
import { openSqliteKeyring, readSqliteDataKeys } from './data-keys';
import { DataKeyUnwrapError, Keyring, kidOf } from './keyring';
import type { SecretBox } from './secret-box';
import { type AccountRow, accountOfRow, accountRow, DecryptedContexts, decodeCursor, encodeCursor, type KeyState } from './account-rows';

/**
 * Integrated accounts in SQLite. The whole `context` is sealed with the active data key of the directory's
 * {@link Keyring} (the account id as AAD); only `publicContext`, which the caller computed without secrets, is stored
 * in clear.
 * Decrypted contexts are cached by their ciphertext: a changed row (a new seal has a new IV, so a new
 * ciphertext) is decrypted again, whichever process changed it; an unchanged one costs no AES or JSON work.
 * {@link changeStamp} tells a cache in front of it when to read again (writes here, and commits of other
 * connections or processes).
 *
 * A row that cannot be read (its sealed context does not open, its public context is not JSON) is returned with
 * `fault` set instead of throwing, so that one bad row neither hides the others from a listing nor blocks its own
 * deletion. Writes are conditional on the data key they were sealed with still being the active one (one SQL
 * statement): after a rotation (`keys rotate`, any process) made another key active, the write is sealed again with
 * it and retried; only when this process's master key cannot open the new data key is the write refused
 * ({@link EncryptionKeyChangedError}) instead of sealing a secret with a key nobody else holds. A value sealed with a
 * data key this store has not loaded yet makes it load the table again.
 */
export class SqliteAccountStore implements AccountStore {
  private readonly insertStatement: Database.Statement;
  private readonly selectStatement: Database.Statement;
  private readonly deleteStatement: Database.Statement;
  private readonly statusStatement: Database.Statement;
  private readonly updateStatement: Database.Statement;
  private readonly listStatements = new Map<string, Database.Statement>();
  private readonly existsStatement: Database.Statement;
  private readonly decrypted: DecryptedContexts;
  private readonly keyring: Keyring;
  private readonly outbox: SqliteOutbox;

  /**
   * @param box the master key's box: opens the directory's data keys (the first one is made if there is none); when
   *   it opens none, every read is `key_changed` and every write refused
   */
  constructor(
    private readonly db: Database.Database,
    private readonly box: SecretBox,
  ) {
    try {
      this.keyring = openSqliteKeyring(db, box);
    } catch (error) {
      if (!(error instanceof DataKeyUnwrapError)) throw error;
      // Another key's directory: every read is `key_changed`, every write refused (as a key check would).
      this.keyring = new Keyring(box);
    }
    this.decrypted = new DecryptedContexts(this.keyring);
    this.outbox = new SqliteOutbox(db);
    // Both writes happen only while the data key they sealed with is the active one: a rotation activates another.
    const sameKey = `EXISTS (SELECT 1 FROM encryption_keys WHERE kid = @kid AND state = 'active')`;
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
    this.statusStatement = db.prepare(
      `UPDATE integrated_accounts SET status = ?, last_error = ?, updated_at = ?
       WHERE id = ? AND environment_id = ? AND (? IS NULL OR updated_at = ?)`,
    );
  }

  /** @throws EncryptionKeyChangedError when this process's master key cannot open the active data key (nothing written) */
  async create(account: StoredAccount, events?: readonly OutboxEvent[]): Promise<void> {
    if (this.withEvents(events, () => this.insertStatement.run(this.toRow(account)).changes) === 0) {
      // Only an inactive data key stops the insert (a duplicate id throws): load the keyring, seal again, once.
      this.reloadKeyring();
      if (this.withEvents(events, () => this.insertStatement.run(this.toRow(account)).changes) === 0) throw this.keyChanged();
    }
    noteDatabaseWrite(this.db);
  }

  /** @throws EncryptionKeyChangedError when this process's master key cannot open the active data key (nothing written) */
  async update(account: StoredAccount, events?: readonly OutboxEvent[]): Promise<boolean> {
    let changed = this.withEvents(events, () => this.updateStatement.run(this.toRow(account)).changes) > 0;
    if (!changed && this.existsStatement.get(account.id, account.environmentId) !== undefined) {
      this.reloadKeyring();
      changed = this.withEvents(events, () => this.updateStatement.run(this.toRow(account)).changes) > 0;
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
   * Loads the data keys again (a rotation by another process activated one).
   * @throws EncryptionKeyChangedError when the master key does not open them
   */
  private reloadKeyring(): void {
    try {
      this.keyring.load(readSqliteDataKeys(this.db));
    } catch {
      throw this.keyChanged();
    }
  }

  private keyChanged(): EncryptionKeyChangedError {
    return new EncryptionKeyChangedError(`the database ${this.db.name}`);
  }

  /** See `AccountStore.changeStamp`: {@link databaseChangeStamp} of this store's connection. */
  changeStamp(): number {
    return databaseChangeStamp(this.db);
  }

  /** The row to write, with `kid`: the data key its context is sealed with (the write's condition). */
  private toRow(account: StoredAccount): AccountRow & { kid: string | undefined } {
    if (this.keyring.activeKid === undefined) this.reloadKeyring();
    const row = accountRow(account, this.keyring);
    return { ...row, kid: kidOf(row.sealed_context) };
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
    if (!this.keyring.knows(row.sealed_context)) {
      try {
        this.keyring.load(readSqliteDataKeys(this.db));
      } catch {
        // The master key opens no data key: the account reads as `key_changed` below.
      }
    }
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
