import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const ALGORITHM = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = 'v1';

/**
 * Authenticated encryption of secrets at rest (DESIGN.md §4): AES-256-GCM with a fresh random 96-bit IV
 * per value and additional authenticated data binding a ciphertext to its owner (an account id), so a
 * sealed value copied to another row does not open.
 * Sealed format: `v1:<iv base64>:<tag base64>:<ciphertext base64>`.
 */
export class SecretBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('The encryption key must be 32 bytes (AES-256).');
  }

  /**
   * A 32-byte key for another purpose, derived from this one with HKDF-SHA256 (RFC 5869) and `label` as its info:
   * e.g. the key that signs list cursors, the same on every node that shares the encryption key.
   */
  derive(label: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.key, Buffer.alloc(0), label, 32));
  }

  /** Encrypts UTF-8 text: `v1:<iv>:<tag>:<ciphertext>` (base64 parts). */
  seal(plaintext: string, aad: string): string {
    return `${VERSION}:${this.sealParts(plaintext, aad)}`;
  }

  /**
   * Decrypts a sealed value.
   * @throws Error when the value was sealed with another key or AAD, or was altered
   */
  open(sealed: string, aad: string): string {
    if (!sealed.startsWith(`${VERSION}:`)) throw new Error('Unknown sealed-secret format.');
    return this.openParts(sealed.slice(VERSION.length + 1), aad);
  }

  /**
   * Encrypts UTF-8 text to `<iv>:<tag>:<ciphertext>` (base64 parts) without a format prefix: the caller adds its own
   * (the keyring's `v2:<key id>:`).
   */
  sealParts(plaintext: string, aad: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(ALGORITHM, this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [iv.toString('base64'), cipher.getAuthTag().toString('base64'), ciphertext.toString('base64')].join(':');
  }

  /**
   * Decrypts what {@link sealParts} made.
   * @throws Error when the parts were sealed with another key or AAD, or were altered
   */
  openParts(parts: string, aad: string): string {
    const [iv, tag, ciphertext, extra] = parts.split(':');
    if (!iv || !tag || ciphertext === undefined || extra !== undefined) throw new Error('Unknown sealed-secret format.');
    const decipher = createDecipheriv(ALGORITHM, this.key, Buffer.from(iv, 'base64'), { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64')), decipher.final()]).toString('utf8');
  }
}

/** Name of the key file inside the data directory. */
export const KEY_FILE = 'encryption.key';

/**
 * Reads a 32-byte key given as 64 hex characters or base64 (the forms of `UNICRM_ENCRYPTION_KEY`).
 * @param name what to call the value in the error
 * @throws Error naming `name` when the text is not a 32-byte key
 */
export function parseEncryptionKey(text: string, name = 'UNICRM_ENCRYPTION_KEY'): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-f]{64}$/i.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (key.length !== 32) throw new Error(`${name} must be 32 bytes, as 64 hex characters or base64 (openssl rand -base64 32).`);
  return key;
}

/**
 * The key of a data directory as {@link loadEncryptionKey} finds it, but never creating one: `envValue` when set,
 * else `<dataDir>/encryption.key` when it exists.
 * @returns the key, or undefined when there is neither
 * @throws Error when the value or the file does not hold a 32-byte key
 */
export function findEncryptionKey(dataDir: string, envValue?: string): Buffer | undefined {
  if (envValue !== undefined && envValue !== '') return parseEncryptionKey(envValue);
  const path = join(dataDir, KEY_FILE);
  if (!existsSync(path)) return undefined;
  const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new Error(`The key file ${path} does not hold a 32-byte base64 key.`);
  return key;
}

/**
 * The 32-byte key for {@link SecretBox} (DESIGN.md §4): from `envValue` (`UNICRM_ENCRYPTION_KEY`,
 * 64 hex characters or base64 of 32 bytes), else from `<dataDir>/encryption.key`, created on first
 * use with mode 0600.
 * @throws Error naming the variable when `envValue` is not a 32-byte key
 */
export function loadEncryptionKey(dataDir: string, envValue?: string): Buffer {
  if (envValue !== undefined && envValue !== '') {
    const text = envValue.trim();
    const key = /^[0-9a-f]{64}$/i.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
    if (key.length !== 32) {
      throw new Error('UNICRM_ENCRYPTION_KEY must be 32 bytes, as 64 hex characters or base64 (openssl rand -base64 32).');
    }
    return key;
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, KEY_FILE);
  try {
    writeFileSync(path, randomBytes(32).toString('base64') + '\n', { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  chmodSync(path, 0o600);
  const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new Error(`The key file ${path} does not hold a 32-byte base64 key.`);
  return key;
}
