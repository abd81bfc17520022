import { formatPipelinerDate, isValidTimeZone, nowMicros, parseDateInput, PIPELINER_DATE_RE } from './dates';

describe('Pipeliner dates (pipeliner-api.md §5)', () => {
  const micros = Date.UTC(2024, 6, 9, 12, 51, 48) * 1000 + 50073;

  it('formats UTC with a space, 6-digit microseconds and +00:00', () => {
    expect(formatPipelinerDate(micros)).toBe('2024-07-09 12:51:48.050073+00:00');
    expect(formatPipelinerDate(Date.UTC(2019, 1, 1, 7, 41, 49) * 1000 + 529970)).toBe('2019-02-01 07:41:49.529970+00:00');
    expect(formatPipelinerDate(micros)).toMatch(PIPELINER_DATE_RE);
  });

  it.each([
    ['America/Chicago', '2024-07-09 07:51:48.050073-05:00'],
    ['Europe/Bratislava', '2024-07-09 14:51:48.050073+02:00'],
    ['Asia/Kathmandu', '2024-07-09 18:36:48.050073+05:45'],
    ['UTC', '2024-07-09 12:51:48.050073+00:00'],
  ])('converts to %s', (zone, expected) => {
    expect(formatPipelinerDate(micros, zone)).toBe(expected);
  });

  it('follows daylight saving time', () => {
    const winter = Date.UTC(2024, 0, 15, 12, 0, 0) * 1000;
    expect(formatPipelinerDate(winter, 'America/Chicago')).toBe('2024-01-15 06:00:00.000000-06:00');
  });

  it.each([
    ['2024-07-09 12:51:48.050073+00:00', micros],
    ['2024-07-09T12:51:48.050073Z', micros],
    ['2024-07-09T07:51:48.050073-05:00', micros],
    ['2024-07-09T12:51:48.050073', micros],
    ['2024-09-19T12:30:45Z', Date.UTC(2024, 8, 19, 12, 30, 45) * 1000],
    ['2024-09-19', Date.UTC(2024, 8, 19) * 1000],
    ['yesterday', null],
    ['2024-13-45T99:00:00Z', null],
    ['2023-02-29T10:00:00Z', null],
  ])('parses %s', (text, expected) => {
    const parsed = parseDateInput(text);
    expect(parsed).toBe(expected);
  });

  /** Epoch microseconds of a UTC date of any year (Date.UTC would move years 0-99 to 1900-1999). */
  const utcMicros = (year: number, month: number, day: number, hour = 0, minute = 0, second = 0): number => {
    const date = new Date(0);
    date.setUTCFullYear(year, month - 1, day);
    date.setUTCHours(hour, minute, second, 0);
    return date.getTime() * 1000;
  };

  describe('years 0000-9999 as written (Date.UTC moved 0000-0099 by 1900; the year must have four digits)', () => {
    it.each([
      ['0001-01-01 00:00:00.000000+00:00', utcMicros(1, 1, 1), '0001-01-01 00:00:00.000000+00:00'],
      ['0001-01-01', utcMicros(1, 1, 1), '0001-01-01 00:00:00.000000+00:00'],
      ['0099-12-31T23:59:59Z', utcMicros(99, 12, 31, 23, 59, 59), '0099-12-31 23:59:59.000000+00:00'],
      ['0100-01-01 00:00:00.000000+00:00', utcMicros(100, 1, 1), '0100-01-01 00:00:00.000000+00:00'],
      ['0999-06-15 08:30:00.250000+00:00', utcMicros(999, 6, 15, 8, 30) + 250_000, '0999-06-15 08:30:00.250000+00:00'],
      ['9999-12-31 23:59:59.500000+00:00', utcMicros(9999, 12, 31, 23, 59, 59) + 500_000, '9999-12-31 23:59:59.500000+00:00'],
      ['0000-03-01T12:00:00Z', utcMicros(0, 3, 1, 12), '0000-03-01 12:00:00.000000+00:00'],
      ['0004-02-29T00:00:00Z', utcMicros(4, 2, 29), '0004-02-29 00:00:00.000000+00:00'],
      ['0001-01-01T01:00:00+01:00', utcMicros(1, 1, 1), '0001-01-01 00:00:00.000000+00:00'],
    ])('parses %s to year-exact microseconds and writes it back in Pipeliner format', (text, micros, written) => {
      expect(parseDateInput(text)).toBe(micros);
      expect(formatPipelinerDate(micros)).toBe(written);
      expect(written).toMatch(PIPELINER_DATE_RE);
    });

    it.each([
      ['0001-02-29T00:00:00Z', 'not a leap year'],
      ['0100-02-29T00:00:00Z', 'a century, not a leap year'],
      ['0000-01-01T00:00:00+00:01', 'before year 0000 once the offset is applied'],
      ['9999-12-31T23:59:59-00:01', 'after year 9999 once the offset is applied'],
    ])('refuses %s (%s)', (text) => {
      expect(parseDateInput(text)).toBeNull();
    });

    it('keeps a far date in its second where a number cannot hold every microsecond (not rounded into year 10000)', () => {
      expect(formatPipelinerDate(parseDateInput('9999-12-31 23:59:59.999999+00:00') as number)).toBe(
        '9999-12-31 23:59:59.999968+00:00',
      );
      expect(formatPipelinerDate(parseDateInput('0001-01-01 00:00:00.999999+00:00') as number)).toBe(
        '0001-01-01 00:00:00.999992+00:00',
      );
      expect(formatPipelinerDate(parseDateInput('2024-07-09 12:51:48.999999+00:00') as number)).toBe(
        '2024-07-09 12:51:48.999999+00:00',
      );
    });

    it('writes year 0001 in a Timezone as that zone\'s local time (the offset of the zone at that instant)', () => {
      const micros = utcMicros(1, 1, 1, 12);
      expect(formatPipelinerDate(micros, 'UTC')).toBe('0001-01-01 12:00:00.000000+00:00');
      const chicago = formatPipelinerDate(micros, 'America/Chicago');
      expect(chicago).toMatch(PIPELINER_DATE_RE);
      expect(chicago.startsWith('0001-01-01 ')).toBe(true);
      expect(parseDateInput(chicago)).toBe(micros);
    });
  });

  it('knows valid zones', () => {
    expect(isValidTimeZone('America/Chicago')).toBe(true);
    expect(isValidTimeZone('Mars/Olympus')).toBe(false);
  });

  it('gives strictly increasing microsecond clocks', () => {
    const a = nowMicros();
    const b = nowMicros();
    expect(b).toBeGreaterThan(a);
    expect(Math.abs(a / 1000 - Date.now())).toBeLessThan(1000);
  });
});
