import fc from 'fast-check';
import { pipelinerDateToIso } from './dates';

describe('pipelinerDateToIso', () => {
  it.each([
    ['2024-07-09 12:51:48.050073+00:00', '2024-07-09T12:51:48.050Z'],
    ['2019-02-01 07:41:49.529970+00:00', '2019-02-01T07:41:49.529Z'],
    ['2024-07-09 14:51:48.050073+02:00', '2024-07-09T12:51:48.050Z'],
    ['2024-07-09 07:51:48.999999-05:00', '2024-07-09T12:51:48.999Z'],
    ['2024-07-09T12:51:48Z', '2024-07-09T12:51:48.000Z'],
    ['2019-01-01T00:00:00', '2019-01-01T00:00:00.000Z'],
    ['2024-12-31 23:30:00.5-01:00', '2025-01-01T00:30:00.500Z'],
    ['2024-07-09 12:51:48.050073+0530', '2024-07-09T07:21:48.050Z'],
  ])('converts %s to %s', (input, expected) => {
    expect(pipelinerDateToIso(input)).toBe(expected);
  });

  it.each([null, undefined, 42, '', 'yesterday', '2024-02-30 10:00:00+00:00', '2024-13-01 00:00:00'])(
    'gives undefined for %j',
    (input) => {
      expect(pipelinerDateToIso(input)).toBeUndefined();
    },
  );
});

describe('pipelinerDateToIso: the UTC fast path agrees with Date', () => {
  /** The general computation (Date.UTC, rollover rejected for the calendar day only), as a reference. */
  function viaDate(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number): string | undefined {
    const day = new Date(Date.UTC(y, mo - 1, d));
    if (day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d) return undefined;
    return new Date(Date.UTC(y, mo - 1, d, h, mi, s, ms)).toISOString();
  }
  const two = (n: number) => String(n).padStart(2, '0');

  it.each([
    ['2024-02-29 23:59:59.999999+00:00', '2024-02-29T23:59:59.999Z'],
    ['2023-02-29 10:00:00+00:00', undefined],
    ['1900-02-29 10:00:00+00:00', undefined],
    ['2000-02-29 10:00:00Z', '2000-02-29T10:00:00.000Z'],
    ['2024-04-31 10:00:00+00:00', undefined],
    ['2024-07-09 24:00:00+00:00', '2024-07-10T00:00:00.000Z'],
    ['2024-07-09 12:60:00+0000', '2024-07-09T13:00:00.000Z'],
    ['0024-07-09 12:51:48+00:00', '1924-07-09T12:51:48.000Z'],
    ['2024-07-09 12:51:48.1+00', '2024-07-09T12:51:48.100Z'],
    ['2024-07-09 12:51:48.05z', '2024-07-09T12:51:48.050Z'],
    ['  2024-07-09 12:51:48.050073+00:00  ', '2024-07-09T12:51:48.050Z'],
    ['2024-00-09 12:51:48+00:00', undefined],
    ['2024-07-00 12:51:48+00:00', undefined],
  ])('%s -> %s (as before the fast path)', (input, expected) => {
    expect(pipelinerDateToIso(input)).toBe(expected);
  });

  it('matches the general computation over random dates, valid or not', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1000, max: 9999 }),
        fc.integer({ min: 0, max: 13 }),
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 0, max: 24 }),
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 0, max: 60 }),
        fc.stringMatching(/^\d{0,9}$/),
        fc.constantFrom('', 'Z', '+00:00', '+0000', '+00'),
        (y, mo, d, h, mi, s, frac, zone) => {
          const text = `${y}-${two(mo)}-${two(d)} ${two(h)}:${two(mi)}:${two(s)}${frac ? `.${frac}` : ''}${zone}`;
          const ms = Number((frac + '000').slice(0, 3));
          expect(pipelinerDateToIso(text)).toBe(viaDate(y, mo, d, h, mi, s, ms));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
