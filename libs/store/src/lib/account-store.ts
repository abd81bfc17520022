import {
  type AccountFault,
  type AccountListQuery,
  type AccountPage,
  type AccountStore,
  EncryptionKeyChangedError,
  type IntegratedAccountStatus,
  InvalidCursorError,
  type StoredAccount,
} from '@unicrm/model';
import type Database from 'better-sqlite3';
import { databaseChangeStamp, noteDatabaseWrite } from './change-stamp';
import { KEY_CHECK_ROW, keyFits } from './database';
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

/** Whether this store's box still opens the data directory's key check, asked at most once per read. */
interface KeyState {
  fits?: boolean;
}

/** Decrypted contexts kept in memory, keyed by account id, with the ciphertext they came from. */
const DECRYPTED_CACHE_SIZE = 10_000;

function encodeCursor(row: Pick<AccountRow, 'created_at' | 'id'>): string {
  return Buffer.from(JSON.stringify([row.created_at, row.id]), 'utf8').toString('base64url');
}

/** @throws InvalidCursorError when `cursor` is not one {@link encodeCursor} made */
function decodeCursor(cursor: string): [string, string] {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError();
  }
  if (!Array.isArray(value) || value.length !== 2 || !value.every((v) => typeof v === 'string')) throw new InvalidCursorError();
  return value as [string, string];
}

/** A stored public context: a JSON object, else undefined (the row was altered). */
function parsePublicContext(text: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

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
  private readonly decrypted = new Map<string, { sealed: string; context: Record<string, unknown> }>();
  /** The key check (`meta.key_check` ciphertext) this store's box was seen to open: writes require it unchanged. */
  private keyCheck: string | undefined;

  constructor(
    private readonly db: Database.Database,
    private readonly box: SecretBox,
  ) {
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
  async create(account: StoredAccount): Promise<void> {
    const row = this.toRow(account);
    if (this.insertStatement.run({ ...row, key_check: this.verifiedKeyCheck() }).changes === 0) {
      // Only a changed key check stops the insert (a duplicate id throws): verify again, and once more if it still fits.
      this.keyCheck = undefined;
      if (this.insertStatement.run({ ...row, key_check: this.verifiedKeyCheck() }).changes === 0) throw this.keyChanged();
    }
    noteDatabaseWrite(this.db);
  }

  /** @throws EncryptionKeyChangedError when the data directory's key is no longer this store's (nothing written) */
  async update(account: StoredAccount): Promise<boolean> {
    const row = this.toRow(account);
    let changed = this.updateStatement.run({ ...row, key_check: this.verifiedKeyCheck() }).changes > 0;
    if (!changed && this.existsStatement.get(account.id, account.environmentId) !== undefined) {
      this.keyCheck = undefined;
      changed = this.updateStatement.run({ ...row, key_check: this.verifiedKeyCheck() }).changes > 0;
      if (!changed && this.existsStatement.get(account.id, account.environmentId) !== undefined) throw this.keyChanged();
    }
    if (changed) noteDatabaseWrite(this.db);
    return changed;
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

  /** The decrypted context, or undefined when the sealed value does not open (never its error: it may quote the plaintext). */
  private context(row: AccountRow): Record<string, unknown> | undefined {
    const cached = this.decrypted.get(row.id);
    if (cached && cached.sealed === row.sealed_context) return cached.context;
    let context: unknown;
    try {
      context = JSON.parse(this.box.open(row.sealed_context, row.id));
    } catch {
      return undefined;
    }
    if (typeof context !== 'object' || context === null || Array.isArray(context)) return undefined;
    if (this.decrypted.size >= DECRYPTED_CACHE_SIZE) this.decrypted.clear();
    this.decrypted.set(row.id, { sealed: row.sealed_context, context: context as Record<string, unknown> });
    return context as Record<string, unknown>;
  }

  /** @param keyState whether this store's key still opens the key check, asked once per read (only after a failure) */
  private fromRow(row: AccountRow, keyState: KeyState = {}): StoredAccount {
    const context = this.context(row);
    const publicContext = parsePublicContext(row.public_context);
    let fault: AccountFault | undefined;
    if (context === undefined) {
      keyState.fits ??= keyFits(this.db, this.box);
      fault = keyState.fits ? 'credentials_unreadable' : 'key_changed';
    } else if (publicContext === undefined) {
      fault = 'public_context_unreadable';
    }
    return {
      id: row.id,
      environmentId: row.environment_id,
      tenantId: row.tenant_id,
      integration: row.integration,
      status: row.status,
      context: context ?? {},
      publicContext: publicContext ?? {},
      ...(fault && { fault }),
      lastError: row.last_error,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }

  async delete(environmentId: string, id: string): Promise<boolean> {
    this.decrypted.delete(id);
    const deleted = this.deleteStatement.run(id, environmentId).changes > 0;
    if (deleted) noteDatabaseWrite(this.db);
    return deleted;
  }

  async setStatus(environmentId: string, id: string, status: IntegratedAccountStatus, lastError: string | null, at: string, ifUpdatedAt?: string): Promise<void> {
    const changes = this.statusStatement.run(status, lastError, at, id, environmentId, ifUpdatedAt ?? null, ifUpdatedAt ?? null).changes;
    if (changes > 0) noteDatabaseWrite(this.db);
  }
}
