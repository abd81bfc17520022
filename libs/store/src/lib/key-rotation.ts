import type Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { noteDatabaseWrite } from './change-stamp';
import { webhookSecretAad } from './connect-store';
import { KEY_CHECK, KEY_CHECK_ROW, keyFits } from './database';
import { openSqliteKeyring, readSqliteDataKeys } from './data-keys';
import { kidOf, wrapAad } from './keyring';
import { KEY_FILE, SecretBox } from './secret-box';
import { claimExclusive } from './serving-lock';

/** The key file written before a rotation commits; renamed over `encryption.key` after. */
export const NEXT_KEY_FILE = `${KEY_FILE}.next`;

/** Options of {@link rotateEncryptionKey}. */
export interface RotateOptions {
  /**
   * The new key, when the key comes from `UNICRM_ENCRYPTION_KEY` (the operator sets the variable to it
   * afterwards). Without it a random key is made and written to the key file.
   */
  newKey?: Buffer;
  /** Test seam: called before each row is re-encrypted (throwing simulates an interruption). */
  beforeRow?: (index: number) => void;
  /** Test seam: called after the transaction committed, before the key file is swapped (a crash there). */
  beforeSwap?: () => void;
}

/** What a rotation did. */
export interface RotateResult {
  /** Data keys wrapped again with the new master key. */
  dataKeys: number;
  /** Integrated accounts re-encrypted: those still sealed with the master key itself (written before the keyring). */
  accounts: number;
  /** Webhook signing secrets sealed again with the new master key. */
  webhooks: number;
  /** Where the new key now is: the key file's path, or `environment` when the caller supplied it. */
  keyLocation: string;
}

/**
 * Replaces the **master key** of a SQLite data directory (`keys rotate --master`; the data keys are rotated online
 * by `rotateDataKey`). The master key only wraps the data keys, so this wraps each data key again, re-seals the
 * values still sealed with the master key itself (written before the keyring) with the active data key, seals the
 * webhook signing secrets again with the new master key, and re-seals the key check, in one SQLite transaction. Order, so that an interruption at any point loses nothing:
 * 1. key file mode: the new key is written to `encryption.key.next` (0600) first;
 * 2. one transaction wraps every data key again, re-seals the old values and the key check; any failure rolls it all
 *    back (and `.next` is removed): the old key still opens everything;
 * 3. `.next` is renamed over `encryption.key` (atomic). A crash between 2 and 3 is finished by
 *    {@link recoverKeyRotation} on the next start.
 * No API may serve the directory meanwhile (it holds the old key in memory): the rotation holds the directory to
 * itself ({@link claimExclusive}) and refuses while a process serves it. Another process that still holds the old
 * key (a program embedding the SDK) cannot write with it afterwards: the account store's writes are conditional on
 * the key check this rotation replaces. Caches in front of the stores see the rotation: other connections through
 * `PRAGMA data_version`, this one through {@link noteDatabaseWrite}.
 * @throws DataDirectoryInUseError when a process serves the data directory (nothing changed)
 * @throws Error when `oldBox` is not the data directory's key, or when the re-encryption fails (nothing changed)
 */
export function rotateEncryptionKey(dataDir: string, db: Database.Database, oldBox: SecretBox, options: RotateOptions = {}): RotateResult {
  const claim = claimExclusive(dataDir, 'keys rotate --master');
  try {
    return rotateAlone(dataDir, db, oldBox, options);
  } finally {
    claim.release();
  }
}

function rotateAlone(dataDir: string, db: Database.Database, oldBox: SecretBox, options: RotateOptions): RotateResult {
  if (!keyFits(db, oldBox)) throw new Error('The current key does not open this data directory; nothing was rotated.');
  const newKey = options.newKey ?? randomBytes(32);
  const newBox = new SecretBox(newKey);
  const nextPath = join(dataDir, NEXT_KEY_FILE);
  if (!options.newKey) writeFileSync(nextPath, `${newKey.toString('base64')}\n`, { mode: 0o600 });

  const keyring = openSqliteKeyring(db, oldBox);
  const rows = (db.prepare('SELECT id, sealed_context FROM integrated_accounts ORDER BY id').all() as Array<{ id: string; sealed_context: string }>).filter(
    (row) => kidOf(row.sealed_context) === undefined,
  );
  const dataKeys = readSqliteDataKeys(db).filter((record) => record.wrapped !== null);
  // Webhook signing secrets (issue 17) are sealed with the master key itself: sealed again with the new one.
  const webhooks = db.prepare('SELECT id, sealed_secret FROM webhooks').all() as Array<{ id: string; sealed_secret: string }>;
  const updateWebhook = db.prepare('UPDATE webhooks SET sealed_secret = ? WHERE id = ?');
  const update = db.prepare('UPDATE integrated_accounts SET sealed_context = ? WHERE id = ?');
  const rewrap = db.prepare('UPDATE encryption_keys SET wrapped = ? WHERE kid = ?');
  const check = db.prepare('UPDATE meta SET value = ? WHERE key = ?');
  try {
    db.transaction(() => {
      for (const record of dataKeys) {
        const aad = wrapAad(record.kid);
        rewrap.run(newBox.seal(oldBox.open(record.wrapped as string, aad), aad), record.kid);
      }
      for (const webhook of webhooks) {
        const aad = webhookSecretAad(webhook.id);
        updateWebhook.run(newBox.seal(oldBox.open(webhook.sealed_secret, aad), aad), webhook.id);
      }
      rows.forEach((row, index) => {
        options.beforeRow?.(index);
        update.run(keyring.seal(oldBox.open(row.sealed_context, row.id), row.id), row.id);
      });
      check.run(newBox.seal(KEY_CHECK, KEY_CHECK_ROW), KEY_CHECK_ROW);
    }).immediate();
  } catch (error) {
    rmSync(nextPath, { force: true });
    throw error;
  } finally {
    // Sealed values changed (or, after a rollback, may have been touched): caches read the rows again.
    noteDatabaseWrite(db);
  }
  if (options.newKey) return { dataKeys: dataKeys.length, accounts: rows.length, webhooks: webhooks.length, keyLocation: 'environment' };
  options.beforeSwap?.();
  renameSync(nextPath, join(dataDir, KEY_FILE));
  return { dataKeys: dataKeys.length, accounts: rows.length, webhooks: webhooks.length, keyLocation: join(dataDir, KEY_FILE) };
}

/**
 * Finishes or undoes a rotation that was interrupted (run at start-up, before the key is used): if the
 * current key no longer opens the data but `encryption.key.next` does, the rotation committed and the
 * next key becomes the key; if the current key still opens it, a leftover `.next` is removed.
 * @returns the key to use from now on
 */
export function recoverKeyRotation(dataDir: string, db: Database.Database, currentKey: Buffer): Buffer {
  const nextPath = join(dataDir, NEXT_KEY_FILE);
  if (!existsSync(nextPath)) return currentKey;
  if (keyFits(db, new SecretBox(currentKey))) {
    rmSync(nextPath, { force: true });
    return currentKey;
  }
  const nextKey = Buffer.from(readFileSync(nextPath, 'utf8').trim(), 'base64');
  if (nextKey.length === 32 && keyFits(db, new SecretBox(nextKey))) {
    renameSync(nextPath, join(dataDir, KEY_FILE));
    return nextKey;
  }
  return currentKey;
}
