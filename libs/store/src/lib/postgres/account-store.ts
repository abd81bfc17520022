import {
  type AccountListQuery,
  type AccountPage,
  type AccountStore,
  EncryptionKeyChangedError,
  type IntegratedAccountStatus,
  type OutboxEvent,
  type StoredAccount,
} from '@unicrm/model';
import { type AccountRow, accountOfRow, accountRow, DecryptedContexts, decodeCursor, encodeCursor } from '../account-rows';
import { Keyring, kidOf } from '../keyring';
import type { SecretBox } from '../secret-box';
import { inTransaction, writeOutboxEvents } from './connect-store';
import { type PostgresDatabase, postgresKeyCheck } from './database';
import { readPostgresDataKeys } from './data-keys';

/**
 * The write's condition: the data key it sealed with (parameter `$n`) is still the active one. `FOR SHARE` holds that
 * key's row until the write commits, so a rotation's activation (which updates the row) waits for it, or the write,
 * coming after the activation, finds the key inactive (`PostgresDataKeyTable`).
 */
const sameKey = (n: number) => `EXISTS (SELECT 1 FROM unicrm_encryption_keys WHERE kid = $${n} AND state = 'active' FOR SHARE)`;
const COLUMNS = 'id, environment_id, tenant_id, integration, status, public_context, sealed_context, last_error, created_at, updated_at';

/**
 * Integrated accounts in PostgreSQL: the same rows, sealing and faults as the SQLite store (`SqliteAccountStore`), for
 * several nodes on one database. Writes are conditional on the data key they sealed with being the active one (one
 * statement); after a rotation on any node activated another, the keyring is loaded again and the write sealed
 * again and retried. A value sealed with a key this node has not loaded makes it load the table. {@link changeStamp} is the node's change feed (`PostgresChangeFeed`): a change by any node reaches this one's
 * caches within the feed's bound.
 */
export class PostgresAccountStore implements AccountStore {
  private readonly decrypted: DecryptedContexts;
  private readonly keyring: Keyring;
  /** The first load of the keyring (then again after a refused write or an unknown key). */
  private loaded: Promise<void> | undefined;

  /** @param box the master key's box: opens the data keys of the database */
  constructor(
    private readonly db: PostgresDatabase,
    private readonly box: SecretBox,
  ) {
    this.keyring = new Keyring(box);
    this.decrypted = new DecryptedContexts(this.keyring);
  }

  /** @throws EncryptionKeyChangedError when this node's master key cannot open the active data key (nothing written) */
  async create(account: StoredAccount, events?: readonly OutboxEvent[]): Promise<void> {
    await this.ready();
    const insert = async () => {
      if (this.keyring.activeKid === undefined) throw this.keyChanged();
      const row = accountRow(account, this.keyring);
      return (await this.run(events, `INSERT INTO integrated_accounts (${COLUMNS}) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE ${sameKey(11)}`, [...this.values(row), kidOf(row.sealed_context)])).rowCount;
    };
    if ((await insert()) === 0) {
      await this.reload();
      if ((await insert()) === 0) throw this.keyChanged();
    }
    this.db.feed.bump();
  }

  /** @throws EncryptionKeyChangedError when this node's master key cannot open the active data key (nothing written) */
  async update(account: StoredAccount, events?: readonly OutboxEvent[]): Promise<boolean> {
    await this.ready();
    const write = async () => {
      if (this.keyring.activeKid === undefined) throw this.keyChanged();
      const row = accountRow(account, this.keyring);
      return (
        await this.run(
          events,
          `UPDATE integrated_accounts SET tenant_id = $3, status = $4, public_context = $5, sealed_context = $6, last_error = $7, updated_at = $8
           WHERE id = $1 AND environment_id = $2 AND ${sameKey(9)}`,
          [row.id, row.environment_id, row.tenant_id, row.status, row.public_context, row.sealed_context, row.last_error, row.updated_at, kidOf(row.sealed_context)],
        )
      ).rowCount;
    };
    let changed = (await write()) !== 0;
    if (!changed && (await this.exists(account))) {
      await this.reload();
      changed = (await write()) !== 0;
      if (!changed && (await this.exists(account))) throw this.keyChanged();
    }
    if (changed) this.db.feed.bump();
    return changed;
  }

  /** The keyring, loaded once. */
  private ready(): Promise<void> {
    this.loaded ??= this.reload().catch((error) => {
      this.loaded = undefined;
      throw error;
    });
    return this.loaded;
  }

  /**
   * Loads the data keys again (a rotation activated one).
   * @throws EncryptionKeyChangedError when the master key does not open them
   */
  private async reload(): Promise<void> {
    const records = await readPostgresDataKeys(this.db);
    try {
      this.keyring.load(records);
    } catch {
      throw this.keyChanged();
    }
  }

  async get(environmentId: string, id: string): Promise<StoredAccount | undefined> {
    const { rows } = await this.db.query<AccountRow>(`SELECT ${COLUMNS} FROM integrated_accounts WHERE id = $1 AND environment_id = $2`, [id, environmentId]);
    const row = rows[0];
    if (!row) return undefined;
    return (await this.fromRows([row]))[0];
  }

  async list(environmentId: string, query: AccountListQuery): Promise<AccountPage> {
    const where = ['environment_id = $1'];
    const params: unknown[] = [environmentId];
    const add = (clause: (n: string) => string, value: unknown) => {
      params.push(value);
      where.push(clause(`$${params.length}`));
    };
    if (query.tenantId !== undefined) add((n) => `tenant_id = ${n}`, query.tenantId);
    if (query.status !== undefined) add((n) => `status = ${n}`, query.status);
    if (query.integration !== undefined) add((n) => `integration = ${n}`, query.integration);
    if (query.cursor !== undefined) {
      const [createdAt, id] = decodeCursor(query.cursor);
      params.push(createdAt, id);
      where.push(`(created_at, id) > ($${params.length - 1}, $${params.length})`);
    }
    params.push(query.limit + 1);
    const { rows } = await this.db.query<AccountRow>(
      `SELECT ${COLUMNS} FROM integrated_accounts WHERE ${where.join(' AND ')} ORDER BY created_at, id LIMIT $${params.length}`,
      params,
    );
    const more = rows.length > query.limit;
    const page = more ? rows.slice(0, query.limit) : rows;
    const last = page[page.length - 1];
    return { accounts: await this.fromRows(page), nextCursor: more && last ? encodeCursor(last) : null };
  }

  async delete(environmentId: string, id: string, events?: readonly OutboxEvent[]): Promise<boolean> {
    this.decrypted.forget(id);
    const deleted = ((await this.run(events, 'DELETE FROM integrated_accounts WHERE id = $1 AND environment_id = $2', [id, environmentId])).rowCount ?? 0) > 0;
    if (deleted) this.db.feed.bump();
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
    const { rowCount } = await this.run(
      events,
      `UPDATE integrated_accounts SET status = $1, last_error = $2, updated_at = $3
       WHERE id = $4 AND environment_id = $5 AND ($6::text IS NULL OR updated_at = $6)`,
      [status, lastError, at, id, environmentId, ifUpdatedAt ?? null],
    );
    if ((rowCount ?? 0) > 0) this.db.feed.bump();
    return (rowCount ?? 0) > 0;
  }

  /**
   * Runs one write and, when it changed a row, writes `events` to the outbox, in one transaction (issue 17); without
   * events, one statement on the pool as before.
   */
  private async run(events: readonly OutboxEvent[] | undefined, text: string, params: unknown[]): Promise<{ rowCount: number | null }> {
    if (!events || events.length === 0) return this.db.query(text, params);
    return inTransaction(this.db, async (client) => {
      const result = await client.query(text, params);
      if ((result.rowCount ?? 0) > 0) await writeOutboxEvents(client, events);
      return result;
    });
  }

  /** See `AccountStore.changeStamp`: the node's change feed. */
  changeStamp(): number {
    return this.db.feed.current();
  }

  private values(row: AccountRow): unknown[] {
    return [row.id, row.environment_id, row.tenant_id, row.integration, row.status, row.public_context, row.sealed_context, row.last_error, row.created_at, row.updated_at];
  }

  private async exists(account: StoredAccount): Promise<boolean> {
    const { rowCount } = await this.db.query('SELECT 1 FROM integrated_accounts WHERE id = $1 AND environment_id = $2', [account.id, account.environmentId]);
    return (rowCount ?? 0) > 0;
  }

  /** Rows to accounts; the key check is read at most once, and only when a context does not open. */
  private async fromRows(rows: AccountRow[]): Promise<StoredAccount[]> {
    await this.ready().catch(() => undefined);
    if (rows.some((row) => !this.keyring.knows(row.sealed_context))) await this.reload().catch(() => undefined);
    const contexts = rows.map((row) => this.decrypted.open(row));
    const fits = contexts.includes(undefined) ? (await postgresKeyCheck(this.db, this.box)) !== undefined : true;
    return rows.map((row, i) => accountOfRow(row, contexts[i], () => fits));
  }

  private keyChanged(): EncryptionKeyChangedError {
    return new EncryptionKeyChangedError('the PostgreSQL database');
  }
}
