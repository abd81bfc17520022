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
