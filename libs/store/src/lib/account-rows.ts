import { type AccountFault, type IntegratedAccountStatus, InvalidCursorError, type StoredAccount } from '@unicrm/model';
import type { Sealer } from './keyring';

/** A row of `integrated_accounts`, as both backends store it (times as ISO 8601 UTC text). */
export interface AccountRow {
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
export interface KeyState {
  fits?: boolean;
}

/** Decrypted contexts kept in memory, keyed by account id, with the ciphertext they came from. */
export const DECRYPTED_CACHE_SIZE = 10_000;

export function encodeCursor(row: Pick<AccountRow, 'created_at' | 'id'>): string {
  return Buffer.from(JSON.stringify([row.created_at, row.id]), 'utf8').toString('base64url');
}

/** @throws InvalidCursorError when `cursor` is not one {@link encodeCursor} made */
export function decodeCursor(cursor: string): [string, string] {
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
export function parsePublicContext(text: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}


/**
 * Decrypted contexts kept in memory by account id, with the ciphertext they came from: a changed row (a new seal has
 * a new IV, so a new ciphertext) is decrypted again, whichever process changed it; an unchanged one costs no AES or
 * JSON work. Shared by both backends' account stores.
 */
export class DecryptedContexts {
  private readonly decrypted = new Map<string, { sealed: string; context: Record<string, unknown> }>();

  constructor(private readonly box: Sealer) {}

  /** The decrypted context, or undefined when the sealed value does not open (never its error: it may quote the plaintext). */
  open(row: AccountRow): Record<string, unknown> | undefined {
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

  /** Forgets an account's context (deleted). */
  forget(id: string): void {
    this.decrypted.delete(id);
  }
}

/** The row to store for an account: the whole context sealed with the account id as AAD, the public context in clear. */
export function accountRow(account: StoredAccount, box: Sealer): AccountRow {
  return {
    id: account.id,
    environment_id: account.environmentId,
    tenant_id: account.tenantId,
    integration: account.integration,
    status: account.status,
    public_context: JSON.stringify(account.publicContext),
    sealed_context: box.seal(JSON.stringify(account.context), account.id),
    last_error: account.lastError,
    created_at: account.createdAt,
    updated_at: account.updatedAt,
  };
}

/**
 * The account of a row; `fault` set when it cannot be read.
 * @param context the decrypted context, undefined when it did not open
 * @param keyFits asked only when the context did not open: whether the store's key still opens the key check
 *   (`credentials_unreadable` then, else `key_changed`)
 */
export function accountOfRow(row: AccountRow, context: Record<string, unknown> | undefined, keyFits: () => boolean): StoredAccount {
  const publicContext = parsePublicContext(row.public_context);
  let fault: AccountFault | undefined;
  if (context === undefined) fault = keyFits() ? 'credentials_unreadable' : 'key_changed';
  else if (publicContext === undefined) fault = 'public_context_unreadable';
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
