const PIPELINER_DATE =
  /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

const isLeapYear = (year: number) => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;

/**
 * The common case, without Date objects: a UTC date (offset absent, `Z`, `+00:00`, `+0000` or `+00`) with a
 * four-digit year from 1000, a valid calendar day and a time of day without rollover (hours < 24, minutes and
 * seconds < 60). The ISO string is then the fields themselves. Anything else returns undefined and goes the
 * general way, which gives the same answer for these inputs.
 */
function utcFastPath(m: RegExpExecArray): string | undefined {
  const [, y, mo, d, h, mi, s, frac = '', zone = 'Z'] = m as unknown as string[];
  if (zone !== 'Z' && zone !== 'z' && zone !== '+00:00' && zone !== '+0000' && zone !== '+00') return undefined;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  if (year < 1000 || month < 1 || month > 12 || day < 1) return undefined;
  const days = month === 2 && isLeapYear(year) ? 29 : (DAYS_IN_MONTH[month - 1] as number);
  if (day > days || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return undefined;
  const ms = (frac + '000').slice(0, 3);
  return `${y}-${mo}-${d}T${h}:${mi}:${s}.${ms}Z`;
}

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
  const fast = utcFastPath(m);
  if (fast !== undefined) return fast;
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
