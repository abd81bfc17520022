import fc from 'fast-check';
import { pipelinerDateToIso, RFC3339_MAX_MS, RFC3339_MIN_MS } from './dates';

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

describe('pipelinerDateToIso: years 0000-0099 and the edges of the range (issue 12, item 10)', () => {
  it.each([
    // Date.UTC reads years 0-99 as 1900-1999: these came back shifted by 1900.
    ['0001-01-01 00:00:00.000000+00:00', '0001-01-01T00:00:00.000Z'],
    ['0024-07-09 12:51:48+00:00', '0024-07-09T12:51:48.000Z'],
    ['0099-12-31 23:59:59.999999+00:00', '0099-12-31T23:59:59.999Z'],
    ['0050-06-15 12:00:00+02:00', '0050-06-15T10:00:00.000Z'],
    ['0099-12-31 23:30:00-01:00', '0100-01-01T00:30:00.000Z'],
    ['0100-01-01 00:30:00+01:00', '0099-12-31T23:30:00.000Z'],
    ['0999-03-01 00:00:00+00:00', '0999-03-01T00:00:00.000Z'],
    // Year 0000 is valid in RFC 3339 (1 BC, a leap year).
    ['0000-01-01 00:00:00.000000+00:00', '0000-01-01T00:00:00.000Z'],
    ['0000-02-29 12:00:00+00:00', '0000-02-29T12:00:00.000Z'],
    ['0000-01-01 01:00:00+01:00', '0000-01-01T00:00:00.000Z'],
    ['9999-12-31 23:59:59.999999+00:00', '9999-12-31T23:59:59.999Z'],
    ['9999-12-31 23:59:59-00:00', '9999-12-31T23:59:59.000Z'],
  ])('%s -> %s', (input, expected) => {
    expect(pipelinerDateToIso(input)).toBe(expected);
  });

  it.each([
    // An offset that moves the date out of 0000-9999: RFC 3339 cannot write it (JavaScript would write ±YYYYYY).
    ['0000-01-01 00:30:00+01:00'],
    ['0000-01-01 00:00:00.000000+00:01'],
    ['9999-12-31 23:30:00-01:00'],
    ['9999-12-31 24:00:00+00:00'],
  ])('omits %s: outside 0000-9999 once in UTC', (input) => {
    expect(pipelinerDateToIso(input)).toBeUndefined();
  });
});

describe('pipelinerDateToIso: 24:00:00 and leap seconds', () => {
  it.each([
    // 24:00:00 is the end of the day (ISO 8601): the next day's 00:00:00.
    ['2024-07-09 24:00:00+00:00', '2024-07-10T00:00:00.000Z'],
    ['2024-07-09 24:00:00.000000+00:00', '2024-07-10T00:00:00.000Z'],
    ['2024-12-31 24:00:00Z', '2025-01-01T00:00:00.000Z'],
    ['2024-02-28 24:00:00+00:00', '2024-02-29T00:00:00.000Z'],
    ['2024-07-09 24:00:00+02:00', '2024-07-09T22:00:00.000Z'],
    ['0000-12-31 24:00:00+00:00', '0001-01-01T00:00:00.000Z'],
    // A leap second (23:59:60 UTC) is clamped to the last millisecond of its day.
    ['2016-12-31 23:59:60+00:00', '2016-12-31T23:59:59.999Z'],
    ['2016-12-31 23:59:60.5Z', '2016-12-31T23:59:59.999Z'],
    ['2016-12-31 15:59:60-08:00', '2016-12-31T23:59:59.999Z'],
    ['2017-01-01 05:29:60+05:30', '2016-12-31T23:59:59.999Z'],
    ['0000-06-30 23:59:60+00:00', '0000-06-30T23:59:59.999Z'],
    ['9999-12-31 23:59:60+00:00', '9999-12-31T23:59:59.999Z'],
  ])('%s -> %s', (input, expected) => {
    expect(pipelinerDateToIso(input)).toBe(expected);
  });

  it.each([
    ['2024-07-09 24:00:01+00:00'],
    ['2024-07-09 24:01:00+00:00'],
    ['2024-07-09 24:00:00.000001+00:00'],
    ['2024-07-09 25:00:00+00:00'],
    ['2024-07-09 12:60:00+00:00'],
    ['2024-07-09 12:59:60+00:00'],
    ['2024-07-09 23:59:60+01:00'],
    ['2024-07-09 23:59:61+00:00'],
    ['2024-07-09 12:00:00+24:00'],
    ['2024-07-09 12:00:00+05:60'],
  ])('omits %s', (input) => {
    expect(pipelinerDateToIso(input)).toBeUndefined();
  });
});

describe('pipelinerDateToIso: the UTC fast path', () => {
  it.each([
    ['2024-02-29 23:59:59.999999+00:00', '2024-02-29T23:59:59.999Z'],
    ['2023-02-29 10:00:00+00:00', undefined],
    ['1900-02-29 10:00:00+00:00', undefined],
    ['2000-02-29 10:00:00Z', '2000-02-29T10:00:00.000Z'],
    ['2024-04-31 10:00:00+00:00', undefined],
    ['2024-07-09 12:51:48.1+00', '2024-07-09T12:51:48.100Z'],
    ['2024-07-09 12:51:48.05z', '2024-07-09T12:51:48.050Z'],
    ['  2024-07-09 12:51:48.050073+00:00  ', '2024-07-09T12:51:48.050Z'],
    ['2024-00-09 12:51:48+00:00', undefined],
    ['2024-07-00 12:51:48+00:00', undefined],
  ])('%s -> %s', (input, expected) => {
    expect(pipelinerDateToIso(input)).toBe(expected);
  });
});

/**
 * An independent oracle: V8's own parser of ECMAScript's date-time format (`YYYY-MM-DDTHH:mm:ss.sssZ` or
 * `±HH:mm`), which reads four-digit years as written (no two-digit rule) and accepts `24:00:00`. It does not
 * check the day of the month (it rolls `02-30` over) and has no second 60, so the oracle checks the day by
 * reading the date back, and applies the stated leap-second rule itself. Results outside 0000-9999 are omitted.
 */
function oracle(y: number, mo: number, d: number, h: number, mi: number, s: number, frac: string, offset: number): string | undefined {
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const date = `${pad(y, 4)}-${pad(mo)}-${pad(d)}`;
  const day = Date.parse(`${date}T00:00:00Z`);
  if (Number.isNaN(day) || new Date(day).toISOString().slice(0, 10) !== date) return undefined;
  if (Math.abs(offset) > 23 * 60 + 59) return undefined;
  const zone = `${offset < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
  const ms = (frac + '000').slice(0, 3);
  if (h === 24 && /[1-9]/.test(frac)) return undefined;
  let t: number;
  if (s === 60) {
    t = Date.parse(`${date}T${pad(h)}:${pad(mi)}:59.999${zone}`);
    if (Number.isNaN(t) || !new Date(t).toISOString().endsWith('T23:59:59.999Z')) return undefined;
  } else {
    t = Date.parse(`${date}T${pad(h)}:${pad(mi)}:${pad(s)}.${ms}${zone}`);
  }
  if (Number.isNaN(t)) return undefined;
  const iso = new Date(t).toISOString();
  return /^\d{4}-/.test(iso) ? iso : undefined;
}

describe('pipelinerDateToIso against an independent oracle', () => {
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const zoneText = (offset: number, style: number) => {
    const sign = offset < 0 ? '-' : '+';
    const hh = pad(Math.floor(Math.abs(offset) / 60));
    const mm = pad(Math.abs(offset) % 60);
    if (offset === 0 && style === 0) return 'Z';
    return style === 1 ? `${sign}${hh}${mm}` : `${sign}${hh}:${mm}`;
  };
  const year = fc.oneof(fc.integer({ min: 0, max: 120 }), fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 9900, max: 9999 }));
  const offset = fc.oneof(fc.constant(0), fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }), fc.constantFrom(-60, 60, 330, -480, 840));

  it('agrees over random dates, valid or not, with any offset', () => {
    fc.assert(
      fc.property(
        year,
        fc.integer({ min: 0, max: 13 }),
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 0, max: 24 }),
        fc.integer({ min: 0, max: 59 }),
        fc.integer({ min: 0, max: 60 }),
        fc.stringMatching(/^\d{0,9}$/),
        offset,
        fc.integer({ min: 0, max: 2 }),
        fc.constantFrom(' ', 'T'),
        (y, mo, d, h, mi, s, frac, off, style, sep) => {
          const text = `${pad(y, 4)}-${pad(mo)}-${pad(d)}${sep}${pad(h)}:${pad(mi)}:${pad(s)}${frac ? `.${frac}` : ''}${zoneText(off, style)}`;
          expect(pipelinerDateToIso(text)).toBe(oracle(y, mo, d, h, mi, s, frac, off));
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('gives back any instant of 0000-9999 written in any offset (round trip)', () => {
    fc.assert(
      fc.property(fc.integer({ min: RFC3339_MIN_MS, max: RFC3339_MAX_MS }), offset, fc.nat(999), (t, off, micros) => {
        const local = new Date(t + off * 60_000).toISOString(); // the wall time at that offset (may leave 0000-9999)
        const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z$/.exec(local);
        fc.pre(m !== null);
        const text = `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6]}.${m[7]}${pad(micros, 3)}${zoneText(off, 2)}`;
        expect(pipelinerDateToIso(text)).toBe(new Date(t).toISOString());
      }),
      { numRuns: 3000 },
    );
  });
});
