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

/** Matches Pipeliner's output format (any offset). */
export const PIPELINER_DATE_RE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}[+-]\d{2}:\d{2}$/;

const formatters = new Map<string, Intl.DateTimeFormat>();

function zoneFormatter(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
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
  for (const part of zoneFormatter(timeZone).formatToParts(new Date(ms))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  const wall = Date.UTC(parts['year'], parts['month'] - 1, parts['day'], parts['hour'], parts['minute'], parts['second']);
  return Math.round((wall - Math.floor(ms / 1000) * 1000) / 60000);
}

/**
 * Formats epoch microseconds as Pipeliner does (§5): `2024-07-09 12:51:48.050073+00:00` in UTC, or in
 * the local time of `timeZone` (IANA name, from the `Timezone` request header) with its offset.
 */
export function formatPipelinerDate(micros: number, timeZone?: string): string {
  const ms = Math.floor(micros / 1000);
  const offset = timeZone ? zoneOffsetMinutes(ms, timeZone) : 0;
  const local = new Date(ms + offset * 60000);
  const fraction = pad(((micros % 1_000_000) + 1_000_000) % 1_000_000, 6);
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return (
    `${local.getUTCFullYear()}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())} ` +
    `${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}.${fraction}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

const INPUT_DATE_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * Parses a date a client sends (filters, cursors, seed files) to epoch microseconds, or null when invalid.
 * Accepts Pipeliner's format and ISO 8601 (`2024-09-19T12:30:45Z`, `2024-09-19`); no offset means UTC (§5).
 */
export function parseDateInput(text: string): number | null {
  const m = INPUT_DATE_RE.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  const base = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  const check = new Date(base);
  // Date.UTC rolls over (month 13, Feb 30, hour 99); a real date reads back the same fields.
  if (
    Number.isNaN(base) ||
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
  return (base - offsetMinutes * 60000) * 1000 + Number(frac.padEnd(6, '0') || '0');
}
