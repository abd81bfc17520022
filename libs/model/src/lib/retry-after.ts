/*
 * Reading `Retry-After` (RFC 9110 §10.2.3) and HTTP-dates (§5.6.7): shared by the core's pacing of provider calls and
 * the SDK's retries, so that both read the header alike.
 */

const DAY_NAMES = 'Mon|Tue|Wed|Thu|Fri|Sat|Sun';
const LONG_DAY_NAMES = 'Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday';
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH = `(?<month>${MONTHS.join('|')})`;
const TIME = '(?<hour>\\d{2}):(?<minute>\\d{2}):(?<second>\\d{2})';
/** The three forms of RFC 9110 §5.6.7, exactly as the RFC writes them (case-sensitive, single spaces, GMT). */
const HTTP_DATE_FORMS: { form: 'imf-fixdate' | 'rfc850' | 'asctime'; pattern: RegExp }[] = [
  // Sun, 06 Nov 1994 08:49:37 GMT (the one to send)
  { form: 'imf-fixdate', pattern: new RegExp(`^(?:${DAY_NAMES}), (?<day>\\d{2}) ${MONTH} (?<year>\\d{4}) ${TIME} GMT$`) },
  // Sunday, 06-Nov-94 08:49:37 GMT (obsolete)
  { form: 'rfc850', pattern: new RegExp(`^(?:${LONG_DAY_NAMES}), (?<day>\\d{2})-${MONTH}-(?<year>\\d{2}) ${TIME} GMT$`) },
  // Sun Nov  6 08:49:37 1994 (obsolete; a one-digit day is padded with a space)
  { form: 'asctime', pattern: new RegExp(`^(?:${DAY_NAMES}) ${MONTH} (?<day>\\d{2}| \\d) ${TIME} (?<year>\\d{4})$`) },
];

/**
 * The instant of an RFC 9110 §5.6.7 HTTP-date, in ms since the epoch; undefined when `text` is not one.
 * All three forms are accepted, as the RFC asks of recipients: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), and
 * the obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`) forms. Parsing
 * is exact: case-sensitive names, fixed widths, GMT only, hour 00-23, minute 00-59, second 00-60 (a leap second
 * reads as the next minute's first instant), a day that exists in its month. The day name is checked for form, not
 * against the date. A two-digit RFC 850 year is read as the RFC says: the most recent year with those last two
 * digits that is not more than 50 years after `now`. This is not `Date.parse`, which takes "1.5", "-1" or "2001"
 * for dates.
 */
export function parseHttpDate(text: string, now: number = Date.now()): number | undefined {
  for (const { form, pattern } of HTTP_DATE_FORMS) {
    const g = pattern.exec(text)?.groups;
    if (!g) continue;
    const [day, hour, minute, second] = [g.day, g.hour, g.minute, g.second].map((v) => Number(v?.trim()));
    const month = MONTHS.indexOf(g.month as string);
    let year = Number(g.year);
    if (form === 'rfc850') {
      const current = new Date(now).getUTCFullYear();
      year += Math.floor(current / 100) * 100;
      if (year > current + 50) year -= 100;
    }
    if ((hour as number) > 23 || (minute as number) > 59 || (second as number) > 60 || (day as number) < 1) return undefined;
    const date = new Date(0);
    // setUTCFullYear, not Date.UTC, which reads the years 0-99 as 1900-1999.
    date.setUTCFullYear(year, month, day);
    if (date.getUTCMonth() !== month) return undefined; // 31 Apr, 30 Feb ...
    date.setUTCHours(hour as number, minute, second, 0);
    return date.getTime();
  }
  return undefined;
}

/**
 * `Retry-After` (RFC 9110 §10.2.3) as a wait in milliseconds from `now`: `delay-seconds` (one or more ASCII digits,
 * nothing else: no sign, no fraction) or an HTTP-date ({@link parseHttpDate}; a date in the past is a wait of 0).
 * Spaces and tabs around the value are not part of it (RFC 9110 §5.5) and are ignored. Anything else, and an absent
 * header, is undefined: the caller then falls back to its own backoff. One function for the SDK's retries and the
 * CLI's import and the core's pacing, so that all read the header alike.
 * @param value the header's value, as received
 * @param now the current time in ms since the epoch (for an HTTP-date)
 * @returns milliseconds (an integer >= 0, at most Number.MAX_SAFE_INTEGER), or undefined
 */
export function retryAfterMs(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.replace(/^[ \t]+|[ \t]+$/g, '');
  if (/^[0-9]+$/.test(text)) return Math.min(Number.MAX_SAFE_INTEGER, Number(text) * 1000);
  const at = parseHttpDate(text, now);
  return at === undefined ? undefined : Math.max(0, at - now);
}
