/**
 * Pipeliner's date format (pipeliner-api.md §5): UTC, a space separator, 6-digit microseconds and a
 * `+00:00` offset, e.g. `2024-07-09 12:51:48.050073+00:00`. With the `Timezone` request header the same
 * instant is written in that IANA zone's local time and offset.
 * Internally every date is an integer count of microseconds since the Unix epoch.
 */

let lastMicros = 0;

/** The current time in microseconds since the epoch; strictly increasing across calls in one process. */
export function nowMicros(): number {
  const micros = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  lastMicros = micros > lastMicros ? micros : lastMicros + 1;
  return lastMicros;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/**
 * Epoch milliseconds of a UTC wall-clock time in the proleptic Gregorian calendar, for any year (0000-9999
 * included). `Date.UTC` maps years 0-99 to 1900-1999 (ECMA-262 MakeFullYear), so the year is set with
 * `setUTCFullYear`, which takes it as written. Out-of-range fields roll over as with `Date.UTC`; NaN for
 * non-finite input.
 */
function utcMillis(year: number, monthIndex: number, day: number, hour: number, minute: number, second: number): number {
  const date = new Date(0);
  date.setUTCFullYear(year, monthIndex, day);
  date.setUTCHours(hour, minute, second, 0);
  return date.getTime();
}

/** The first and last instants Pipeliner's four-digit-year format can write in UTC, in epoch milliseconds. */
const MIN_MS = utcMillis(0, 0, 1, 0, 0, 0);
const MAX_MS = utcMillis(9999, 11, 31, 23, 59, 59) + 999;

/** Matches Pipeliner's output format (any offset). */
export const PIPELINER_DATE_RE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}[+-]\d{2}:\d{2}$/;

const formatters = new Map<string, Intl.DateTimeFormat>();

function zoneFormatter(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** True when `timeZone` is an IANA zone name the runtime knows (e.g. `America/Chicago`, `UTC`). */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    zoneFormatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** Offset of `timeZone` from UTC at the instant `ms` (epoch milliseconds), in minutes (east positive). */
function zoneOffsetMinutes(ms: number, timeZone: string): number {
  const parts: Record<string, number> = {};
  let beforeCommonEra = false;
  for (const part of zoneFormatter(timeZone).formatToParts(new Date(ms))) {
    if (part.type === 'era') beforeCommonEra = part.value === 'BC';
    else if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  // Intl writes year 0000 as "1 BC" (and -0001 as "2 BC"); astronomical years count 0 in.
  const year = beforeCommonEra ? 1 - parts['year'] : parts['year'];
  const wall = utcMillis(year, parts['month'] - 1, parts['day'], parts['hour'], parts['minute'], parts['second']);
  return Math.round((wall - Math.floor(ms / 1000) * 1000) / 60000);
}

/**
 * Formats epoch microseconds as Pipeliner does (§5): `2024-07-09 12:51:48.050073+00:00` in UTC, or in
 * the local time of `timeZone` (IANA name, from the `Timezone` request header) with its offset.
 * The year always has four digits (`0001-01-01 00:00:00.000000+00:00`), as in Pipeliner's format; the
 * sandbox only holds dates of years 0000-9999 (see {@link parseDateInput}).
 */
export function formatPipelinerDate(micros: number, timeZone?: string): string {
  // Split into whole seconds and the fraction without a rounding division: both steps are exact for any number
  // of microseconds of years 0000-9999, even where a double no longer holds every microsecond.
  const micro = ((micros % 1_000_000) + 1_000_000) % 1_000_000;
  const ms = ((micros - micro) / 1_000_000) * 1000;
  const offset = timeZone ? zoneOffsetMinutes(ms, timeZone) : 0;
  const local = new Date(ms + offset * 60000);
  const fraction = pad(micro, 6);
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return (
    `${pad(local.getUTCFullYear(), 4)}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())} ` +
    `${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}.${fraction}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

const INPUT_DATE_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * Parses a date a client sends (filters, cursors, seed files) to epoch microseconds, or null when invalid.
 * Accepts Pipeliner's format and ISO 8601 (`2024-09-19T12:30:45Z`, `2024-09-19`); no offset means UTC (§5).
 * Years are taken as written, 0000-9999 (proleptic Gregorian calendar; `0001-01-01` is year 1, not 1901).
 * A date whose offset moves it outside 0000-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z is null: Pipeliner's
 * four-digit-year format cannot write it.
 */
export function parseDateInput(text: string): number | null {
  const m = INPUT_DATE_RE.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  const base = utcMillis(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  const check = new Date(base);
  // The fields roll over (month 13, Feb 30, hour 99); a real date reads back the same fields.
  if (
    Number.isNaN(base) ||
    check.getUTCFullYear() !== Number(y) ||
    check.getUTCMonth() !== Number(mo) - 1 ||
    check.getUTCDate() !== Number(d) ||
    check.getUTCHours() !== Number(h) ||
    check.getUTCMinutes() !== Number(mi)
  ) {
    return null;
  }
  let offsetMinutes = 0;
  if (zone && zone.toUpperCase() !== 'Z') {
    const digits = zone.replace(':', '');
    const sign = digits.startsWith('-') ? -1 : 1;
    offsetMinutes = sign * (Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5)));
  }
  const ms = base - offsetMinutes * 60000;
  if (ms < MIN_MS || ms > MAX_MS) return null;
  return withFraction(ms * 1000, Number(frac.padEnd(6, '0') || '0'));
}

/**
 * `secondMicros + fraction` (a whole second in microseconds, plus 0-999999 µs) as a number that stays in that
 * second. Within about 1685-2255 the sum is a safe integer and exact. Further out a double cannot hold every
 * microsecond (its step is 8 µs at year 0001, 32 µs at year 9999), and plain addition could round
 * `9999-12-31 23:59:59.999999` up into year 10000; so the fraction is cut down to the nearest multiple of the
 * step, which keeps the date in its second (`secondMicros` is a multiple of 10^6, hence of every such step).
 */
function withFraction(secondMicros: number, fraction: number): number {
  for (let step = 1; ; step *= 2) {
    const kept = fraction - (fraction % step);
    if (secondMicros + kept - secondMicros === kept) return secondMicros + kept;
  }
}
