const PIPELINER_DATE =
  /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

const MS_PER_DAY = 86_400_000;

/** Proleptic Gregorian leap year (year 0, i.e. 1 BC, is one). */
const isLeapYear = (year: number) => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;

/** Days in a month (1-12) of a proleptic Gregorian year. */
const daysInMonth = (year: number, month: number) => (month === 2 && isLeapYear(year) ? 29 : (DAYS_IN_MONTH[month - 1] as number));

/** `0000-01-01T00:00:00.000Z` in epoch milliseconds: the earliest instant RFC 3339 can write. */
export const RFC3339_MIN_MS = -62_167_219_200_000;
/** `9999-12-31T23:59:59.999Z` in epoch milliseconds: the latest instant RFC 3339 can write (to the millisecond). */
export const RFC3339_MAX_MS = 253_402_300_799_999;

/**
 * Days from 1970-01-01 to a proleptic Gregorian date, by arithmetic alone (H. Hinnant's `days_from_civil`),
 * so no two-digit-year rule of `Date.UTC` applies: year 1 is year 1.
 */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (month + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/** An offset (`Z`, `+02:00`, `-0530`, `+05`) in minutes east of UTC; undefined past ±23:59. */
function offsetMinutes(zone: string): number | undefined {
  if (zone === 'Z' || zone === 'z') return 0;
  const sign = zone.startsWith('-') ? -1 : 1;
  const digits = zone.slice(1).replace(':', '');
  const hours = Number(digits.slice(0, 2));
  const minutes = Number(digits.slice(2, 4) || '0');
  if (hours > 23 || minutes > 59) return undefined;
  return sign * (hours * 60 + minutes);
}

/**
 * The common case, without arithmetic: a UTC date (offset absent, `Z`, `+00:00`, `+0000` or `+00`), a valid
 * calendar day and an ordinary time of day (hours < 24, minutes and seconds < 60). The ISO string is then the
 * fields themselves, for any year 0000-9999. Anything else returns undefined and goes the general way, which
 * gives the same answer for these inputs (a property test holds both to an oracle).
 */
function utcFastPath(m: RegExpExecArray): string | undefined {
  const [, y, mo, d, h, mi, s, frac = '', zone = 'Z'] = m as unknown as string[];
  if (zone !== 'Z' && zone !== 'z' && zone !== '+00:00' && zone !== '+0000' && zone !== '+00') return undefined;
  const month = Number(mo);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(Number(y), month)) return undefined;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return undefined;
  const ms = (frac + '000').slice(0, 3);
  return `${y}-${mo}-${d}T${h}:${mi}:${s}.${ms}Z`;
}

/**
 * Converts a Pipeliner date to RFC 3339 UTC with milliseconds, as the unified model wants it.
 * Pipeliner writes `2024-07-09 12:51:48.050073+00:00` (space separator, microseconds, offset;
 * pipeliner-api.md §5); with a `Timezone` request header the offset is not UTC, so the offset is
 * applied. A date without an offset is taken as UTC (Pipeliner stores UTC). Digits past
 * milliseconds are truncated (offsets are whole minutes, so truncating before or after applying one is the same).
 *
 * Every valid date is converted exactly, years 0000-9999 included (proleptic Gregorian calendar; year 0000 is
 * valid in RFC 3339 and is a leap year). The rules for the edges (docs/contract.md "Dates"):
 * - `24:00:00` (ISO 8601's end of a day, fraction zero only) is the next day's `00:00:00`; any other hour 24 is
 *   unreadable.
 * - Second `60` (an RFC 3339 leap second) is read only where it falls at `23:59:60` UTC (after the offset), and
 *   is clamped to `23:59:59.999` of that day: JavaScript time has no 61st second, and clamping keeps the
 *   instant in its own UTC day and before every instant of the next one. Second 60 anywhere else is unreadable.
 * - Minute 60, month 0 or 13, a day the month does not have, an offset past ±23:59: unreadable.
 * - A result outside `0000-01-01T00:00:00.000Z` ... `9999-12-31T23:59:59.999Z` (a date at the edge of the
 *   range moved across it by its offset) is unreadable: RFC 3339 cannot write it, and JavaScript's `±YYYYYY`
 *   years are not RFC 3339.
 * Unreadable dates give undefined, and the unified answer omits the field.
 * @example pipelinerDateToIso('2024-07-09 12:51:48.050073+00:00') === '2024-07-09T12:51:48.050Z'
 * @example pipelinerDateToIso('0001-01-01 00:00:00.000000+00:00') === '0001-01-01T00:00:00.000Z'
 * @returns the ISO string, or undefined for anything that is not such a date
 */
export function pipelinerDateToIso(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = PIPELINER_DATE.exec(value.trim());
  if (!m) return undefined;
  const fast = utcFastPath(m);
  if (fast !== undefined) return fast;
  const [, y, mo, d, h, mi, s, frac = '', zone = 'Z'] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h); // 24 (only as 24:00:00) rolls over to the next day's 00:00 in the sum below
  const minute = Number(mi);
  let second = Number(s);
  let ms = Number((frac + '000').slice(0, 3));
  const offset = offsetMinutes(zone);
  if (offset === undefined || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || minute > 59) return undefined;
  const endOfDay = hour === 24;
  if (endOfDay && (minute !== 0 || second !== 0 || /[1-9]/.test(frac))) return undefined;
  if (hour > 24 || second > 60) return undefined;
  const leapSecond = second === 60;
  if (leapSecond) {
    second = 59;
    ms = 999;
  }
  const utc = daysFromCivil(year, month, day) * MS_PER_DAY + ((hour * 60 + minute - offset) * 60 + second) * 1000 + ms;
  if (leapSecond && utc - Math.floor(utc / MS_PER_DAY) * MS_PER_DAY !== MS_PER_DAY - 1) return undefined;
  if (utc < RFC3339_MIN_MS || utc > RFC3339_MAX_MS) return undefined;
  return new Date(utc).toISOString();
}
