import type Database from 'better-sqlite3';
import { keyFits, openDatabase } from './database';
import { recoverKeyRotation } from './key-rotation';
import { loadEncryptionKey, SecretBox } from './secret-box';

/** An open data directory: the database and the box that opens its secrets. */
export interface DataDirectory {
  db: Database.Database;
  box: SecretBox;
  /** True when the key came from `UNICRM_ENCRYPTION_KEY` rather than the key file. */
  keyFromEnvironment: boolean;
}

/**
 * Opens a data directory (DESIGN.md §4–5): loads the key (environment or 0600 key file), opens the
 * database, finishes a key rotation that was interrupted, and checks the key fits.
 * @throws Error with a clear message when the key does not fit the data directory
 */
export function openDataDirectory(dataDir: string, encryptionKey?: string): DataDirectory {
  const keyFromEnvironment = encryptionKey !== undefined && encryptionKey !== '';
  let key = loadEncryptionKey(dataDir, encryptionKey);
  const db = openDatabase(dataDir, new SecretBox(key), { verifyKey: false });
  if (!keyFromEnvironment) key = recoverKeyRotation(dataDir, db, key);
  const box = new SecretBox(key);
  if (!keyFits(db, box)) {
    db.close();
    throw new Error(
      `The encryption key does not match the one the data in ${dataDir} was written with. ` +
        (keyFromEnvironment
          ? 'Set UNICRM_ENCRYPTION_KEY to that key (after `unicrm keys rotate --master --new-key`, the new one).'
          : 'Restore its encryption.key file, or set UNICRM_ENCRYPTION_KEY to the key.'),
    );
  }
  return { db, box, keyFromEnvironment };
}
