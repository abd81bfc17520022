const PIPELINER_DATE =
  /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * Converts a Pipeliner date to RFC 3339 UTC with milliseconds, as the unified model wants it.
 * Pipeliner writes `2024-07-09 12:51:48.050073+00:00` (space separator, microseconds, offset;
 * pipeliner-api.md §5); with a `Timezone` request header the offset is not UTC, so the offset is
 * applied. A date without an offset is taken as UTC (Pipeliner stores UTC). Digits past
 * milliseconds are truncated.
 * @example pipelinerDateToIso('2024-07-09 12:51:48.050073+00:00') === '2024-07-09T12:51:48.050Z'
 * @returns the ISO string, or undefined for anything that is not such a date
 */
export function pipelinerDateToIso(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = PIPELINER_DATE.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac = '', zone = 'Z'] = m;
  const ms = Number((frac + '000').slice(0, 3));
  let offsetMinutes = 0;
  if (zone.toUpperCase() !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0'));
  }
  const utc = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms) - offsetMinutes * 60_000;
  const date = new Date(utc);
  if (Number.isNaN(date.getTime())) return undefined;
  // Reject impossible calendar dates (2024-02-30) instead of rolling them over.
  const local = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (local.getUTCMonth() !== Number(mo) - 1 || local.getUTCDate() !== Number(d)) return undefined;
  return date.toISOString();
}
