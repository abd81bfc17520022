import { createHash, randomBytes } from 'node:crypto';

/**
 * Identifiers. Pipeliner's ids are UUID strings; the ones observed for new records are time-ordered
 * (pipeliner-api.md §5), so new records get RFC 9562 version-7 UUIDs: listing by id (Pipeliner's default
 * order, §4) then lists records in creation order.
 */

let lastMs = 0;
let sequence = 0;

/** A new, time-ordered (UUIDv7) id, strictly increasing within the process. */
export function newId(): string {
  let ms = Date.now();
  if (ms <= lastMs) {
    sequence += 1;
    if (sequence > 0xfff) {
      lastMs += 1;
      sequence = 0;
    }
    ms = lastMs;
  } else {
    lastMs = ms;
    sequence = 0;
  }
  const bytes = randomBytes(16);
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (sequence >> 8);
  bytes[7] = sequence & 0xff;
  bytes[8] = 0x80 | (bytes[8] & 0x3f);
  return formatUuid(bytes);
}

function formatUuid(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for any 8-4-4-4-12 hex UUID string (Pipeliner's system ids are not RFC-versioned, §5). */
export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_RE.test(value);
}

/** A stable id for a field (`field_id` of 422 field errors), derived from `Entity.field`. */
export function fieldId(entityName: string, field: string): string {
  const bytes = createHash('sha1').update(`${entityName}.${field}`).digest().subarray(0, 16);
  return formatUuid(Buffer.from(bytes));
}
