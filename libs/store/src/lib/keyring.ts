import { randomBytes } from 'node:crypto';
import { SecretBox } from './secret-box';

/**
 * The life of a data key (docs/security.md "Rotating"):
 * - `active`: the one key new values are sealed with (at most one: a unique index holds it);
 * - `previous`: replaced by a newer key; still opens the values a rotation has not re-sealed yet;
 * - `retired`: no value uses it any more; its wrapped key is erased, it can open nothing.
 */
export type DataKeyState = 'active' | 'previous' | 'retired';

/** A row of the data-key table, as both backends store it (times as ISO 8601 UTC text). */
export interface DataKeyRecord {
  /** The key id written in every value sealed with it (`v2:<kid>:…`): 12 lowercase hex characters. */
  kid: string;
  /** The 32-byte key, sealed with the master key (AAD `unicrm data key <kid>`); null once retired. */
  wrapped: string | null;
  state: DataKeyState;
  created_at: string;
  retired_at: string | null;
}

/** What seals and opens account secrets: the {@link Keyring}, or a bare {@link SecretBox} in old tests and tools. */
export interface Sealer {
  /** Encrypts UTF-8 text, bound to `aad` (the account id). */
  seal(plaintext: string, aad: string): string;
  /**
   * Decrypts a sealed value.
   * @throws Error when the value does not open (another key or AAD, altered, a key this process does not know)
   */
  open(sealed: string, aad: string): string;
}

/** Prefix of the values sealed with a data key: `v2:<kid>:<iv>:<tag>:<ciphertext>`. */
const DATA_KEY_VERSION = 'v2';
const KID = /^[0-9a-f]{12}$/;

/** The AAD a data key is wrapped under (`unicrm data key <kid>`): a wrapped key copied to another id does not open. */
export const wrapAad = (kid: string): string => `unicrm data key ${kid}`;

/**
 * The key id a sealed value names, or undefined for a value sealed directly with the master key (`v1:`, written
 * before the keyring existed) or one in no known format.
 */
export function kidOf(sealed: string): string | undefined {
  if (!sealed.startsWith(`${DATA_KEY_VERSION}:`)) return undefined;
  const end = sealed.indexOf(':', DATA_KEY_VERSION.length + 1);
  return end < 0 ? undefined : sealed.slice(DATA_KEY_VERSION.length + 1, end);
}

/** A value sealed with `kid`'s data key starts with this (the rotation's SQL matches on it). */
export function sealedPrefix(kid: string): string {
  return `${DATA_KEY_VERSION}:${kid}:`;
}

/** A new data key: its id, the key, and the key wrapped with `master` for the data-key table. */
export function newDataKey(master: SecretBox): { kid: string; key: Buffer; wrapped: string } {
  const kid = randomBytes(6).toString('hex');
  const key = randomBytes(32);
  return { kid, key, wrapped: master.seal(key.toString('base64'), wrapAad(kid)) };
}

/** Thrown when the data-key table holds a key the master key does not open (another deployment's table). */
export class DataKeyUnwrapError extends Error {
  constructor(kid: string) {
    super(`The data key ${kid} does not open with this encryption key: UNICRM_ENCRYPTION_KEY (or the key file) is not the one this database was written with.`);
    this.name = 'DataKeyUnwrapError';
  }
}

/**
 * Envelope encryption of account secrets (issue 14 item 5; the pattern of Vault's transit keyring and of KMS data
 * keys): the master key (`UNICRM_ENCRYPTION_KEY` or the key file) only wraps random **data keys**, kept in the
 * database; secrets are sealed with the active data key, and each sealed value names its key
 * (`v2:<kid>:<iv>:<tag>:<ciphertext>`, AES-256-GCM, the account id as AAD). So a rotation needs no new
 * configuration on any node: `keys rotate` adds a data key, makes it active, re-seals every value in batches while
 * the nodes serve, and retires the old key once no value names it.
 *
 * A node learns of a new key when it meets it: {@link knows} is false for a value sealed with it, or a write sealed
 * with a key that is no longer active is refused by the store; the store then calls {@link load} with the table
 * again. Values sealed with the master key itself (`v1:`, before the keyring) still open, with the master key,
 * until a rotation re-seals them.
 */
export class Keyring implements Sealer {
  private readonly keys = new Map<string, SecretBox>();
  private active: string | undefined;

  /** @param master the master key's box: opens the wrapped data keys and the `v1:` values */
  constructor(readonly master: SecretBox) {}

  /**
   * Replaces what this keyring holds by the table's rows: every `active` and `previous` key unwrapped.
   * @throws DataKeyUnwrapError when the master key does not open a key (nothing replaced)
   */
  load(records: readonly DataKeyRecord[]): void {
    const keys = new Map<string, SecretBox>();
    let active: string | undefined;
    for (const record of records) {
      if (record.state === 'retired' || record.wrapped === null) continue;
      let key: Buffer;
      try {
        key = Buffer.from(this.master.open(record.wrapped, wrapAad(record.kid)), 'base64');
      } catch {
        throw new DataKeyUnwrapError(record.kid);
      }
      if (key.length !== 32) throw new DataKeyUnwrapError(record.kid);
      keys.set(record.kid, new SecretBox(key));
      if (record.state === 'active') active = record.kid;
    }
    this.keys.clear();
    for (const [kid, box] of keys) this.keys.set(kid, box);
    this.active = active;
  }

  /** The id of the key new values are sealed with (undefined before the first {@link load} that found one). */
  get activeKid(): string | undefined {
    return this.active;
  }

  /** Whether this keyring can try to open `sealed`: a `v1:` value, or one whose key it holds. */
  knows(sealed: string): boolean {
    const kid = kidOf(sealed);
    return kid === undefined || this.keys.has(kid);
  }

  /**
   * Seals with the active data key: `v2:<kid>:<iv>:<tag>:<ciphertext>`.
   * @throws Error when no data key is active (the store did not load the table)
   */
  seal(plaintext: string, aad: string): string {
    const kid = this.active;
    const box = kid === undefined ? undefined : this.keys.get(kid);
    if (kid === undefined || box === undefined) throw new Error('No active data key: the keyring was not loaded from the database.');
    return `${sealedPrefix(kid)}${box.sealParts(plaintext, aad)}`;
  }

  /**
   * Opens a `v2:` value with the key it names, a `v1:` value with the master key.
   * @throws Error when the key is unknown here or retired, or the value does not open (another AAD, altered)
   */
  open(sealed: string, aad: string): string {
    const kid = kidOf(sealed);
    if (kid === undefined) return this.master.open(sealed, aad);
    const box = this.keys.get(kid);
    if (!box || !KID.test(kid)) throw new Error(`Unknown data key ${kid}.`);
    return box.openParts(sealed.slice(sealedPrefix(kid).length), aad);
  }
}

/** One sealed value to re-seal: its row id and the text the rotation read. */
export interface SealedRow {
  id: string;
  sealed: string;
}

/**
 * The data-key table and the sealed values of one backend, as {@link rotateDataKey} needs them (SQLite:
 * `SqliteDataKeyTable`; PostgreSQL: `PostgresDataKeyTable`). Every method is one statement or one transaction.
 */
export interface DataKeyTable {
  /** Every row of the table, oldest first. */
  readKeys(): Promise<DataKeyRecord[]>;
  /**
   * In one transaction: the active key (if any) becomes `previous`, and `record` is added as the active one.
   * Writes sealed with the old key that have not committed yet are refused afterwards (their condition is the key's
   * being active), so no value under the old key can appear once this commits.
   * `master` is the key `record` was wrapped with: where the master key can change under a running process (SQLite's
   * `keys rotate --master`), the activation checks in the same transaction that it is still the data's master key
   * and otherwise refuses, so a process started before a master rotation cannot add a key nothing can unwrap.
   * @throws EncryptionKeyChangedError when `master` no longer opens the data (nothing written)
   */
  activate(record: Pick<DataKeyRecord, 'kid' | 'wrapped' | 'created_at'>, master: SecretBox): Promise<void>;
  /** Up to `limit` rows with `id > afterId` whose value is not sealed with `kid`, by id. */
  notSealedWith(kid: string, afterId: string, limit: number): Promise<SealedRow[]>;
  /** How many values are not sealed with `kid`. */
  countNotSealedWith(kid: string): Promise<number>;
  /**
   * Writes each row's new value where the row still holds the value that was read (a value changed meanwhile is left:
   * its writer sealed it with the active key).
   * @returns how many rows were written
   */
  reseal(rows: ReadonlyArray<SealedRow & { resealed: string }>): Promise<number>;
  /**
   * Retires `kid` (state `retired`, wrapped key erased, `retired_at`) when it is `previous` and no value names it.
   * @returns whether it was retired
   */
  retire(kid: string, at: string): Promise<boolean>;
  /**
   * Runs `work` while this process is the only one rotating (PostgreSQL: an advisory lock; SQLite: a lock row).
   * @throws RotationInProgressError when another rotation holds it
   */
  exclusively<T>(work: () => Promise<T>): Promise<T>;
}

/** Thrown when `keys rotate` finds another rotation running. */
export class RotationInProgressError extends Error {
  constructor(where: string) {
    super(`Another keys rotate is running on ${where}; it will finish the rotation (run keys rotate again once it has, or if it was stopped, to resume).`);
    this.name = 'RotationInProgressError';
  }
}

/** Progress of a rotation, reported after each batch. */
export interface RotationProgress {
  /** Values re-sealed so far. */
  resealed: number;
  /** Values that were not on the new key when the pass began. */
  total: number;
}

/** What {@link rotateDataKey} did. */
export interface DataKeyRotation {
  /** The key that is active now. */
  activeKid: string;
  /** True when an interrupted rotation was finished (no new key was made). */
  resumed: boolean;
  /** Values re-sealed with the active key. */
  resealed: number;
  /** Keys retired (the replaced key, and any left `previous` by an interrupted rotation). */
  retired: string[];
  /**
   * Accounts whose credentials open with no key (altered rows, or sealed under another master key): left as they
   * are, and the key they name is kept (not retired) while they name it.
   */
  unreadable: string[];
}

/** Options of {@link rotateDataKey}. */
export interface RotateDataKeyOptions {
  /** Values re-sealed per batch (default 500): one read and one write statement each. */
  batchSize?: number;
  /** Called after each batch. */
  onProgress?: (progress: RotationProgress) => void;
  /** Test seam: called before each batch's write (throwing simulates an interruption). */
  beforeBatch?: (index: number) => void | Promise<void>;
  /** Now, as ISO 8601 text (tests). */
  now?: () => string;
}

/** Passes over the values before giving up on ones that keep changing under the rotation. */
const MAX_PASSES = 5;

/**
 * Rotates the data key online (issue 14 item 5), on either backend:
 * 1. unless an interrupted rotation left a `previous` key (then it is resumed, with the key active now), a new
 *    data key is made, wrapped with the master key, and activated; from then on every node seals with it (a node
 *    that still seals with the old key has its write refused and reloads the keyring);
 * 2. every value not sealed with the active key is re-sealed, in batches of `batchSize` by id, each batch one
 *    conditional write (a value its owner changed meanwhile is left as written);
 * 3. each `previous` key is retired once no value names it: its wrapped key is erased.
 * Nodes never stop serving: reads of a value sealed with a key a node has not loaded yet load the table again.
 * Interrupted anywhere, running it again finishes the work; nothing is lost, since the old key stays until no value
 * needs it.
 * A value that opens with no key is left as it is and reported (`unreadable`); the key it names is then not retired.
 * @throws RotationInProgressError when another rotation is running (nothing changed)
 */
export async function rotateDataKey(table: DataKeyTable, keyring: Keyring, options: RotateDataKeyOptions = {}): Promise<DataKeyRotation> {
  const now = options.now ?? (() => new Date().toISOString());
  const batchSize = options.batchSize ?? 500;
  return table.exclusively(async () => {
    const records = await table.readKeys();
    const resumed = records.some((record) => record.state === 'previous') && records.some((record) => record.state === 'active');
    if (!resumed) {
      const { kid, wrapped } = newDataKey(keyring.master);
      await table.activate({ kid, wrapped, created_at: now() }, keyring.master);
    }
    keyring.load(resumed ? records : await table.readKeys());
    const activeKid = keyring.activeKid;
    if (activeKid === undefined) throw new Error('No data key is active after the activation.');

    let resealed = 0;
    let batches = 0;
    const unreadable = new Set<string>();
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      const total = await table.countNotSealedWith(activeKid);
      if (total <= unreadable.size) break;
      let afterId = '';
      for (;;) {
        const rows = await table.notSealedWith(activeKid, afterId, batchSize);
        if (rows.length === 0) break;
        afterId = (rows[rows.length - 1] as SealedRow).id;
        const batch: Array<SealedRow & { resealed: string }> = [];
        for (const row of rows) {
          try {
            batch.push({ ...row, resealed: keyring.seal(keyring.open(row.sealed, row.id), row.id) });
          } catch {
            // Never its error (it may quote the plaintext); the row is left as it is and reported.
            unreadable.add(row.id);
          }
        }
        await options.beforeBatch?.(batches++);
        if (batch.length > 0) resealed += await table.reseal(batch);
        options.onProgress?.({ resealed, total });
      }
    }

    const retired: string[] = [];
    for (const record of await table.readKeys()) {
      if (record.state === 'previous' && (await table.retire(record.kid, now()))) retired.push(record.kid);
    }
    keyring.load(await table.readKeys());
    return { activeKid, resumed, resealed, retired, unreadable: [...unreadable].sort() };
  });
}
