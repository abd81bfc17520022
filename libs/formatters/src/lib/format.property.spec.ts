import { STAGE_SHAPE } from '@unicrm/model';
import fc from 'fast-check';
import { excludeFields } from './exclude-fields';
import { formatRecord } from './format';

// Property: an excluded field is never in the answer, in either format, whatever the record.
const key = fc.constantFrom('id', 'name', 'position', 'status', 'pipeline', 'created_at', 'updated_at', 'remote_data', 'a', 'b');
const record = fc.dictionary(key, fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.dictionary(key, fc.oneof(fc.string(), fc.integer()), { maxKeys: 4 })), { maxKeys: 8 });
const path = fc.array(key, { minLength: 1, maxLength: 2 }).map((parts) => parts.join('.'));

function has(value: unknown, parts: string[]): boolean {
  let current = value;
  for (const part of parts) {
    if (typeof current !== 'object' || current === null || !Object.prototype.hasOwnProperty.call(current, part)) return false;
    current = (current as Record<string, unknown>)[part];
  }
  return true;
}

describe('formatters never leak excluded fields', () => {
  it.each(['unified', 'normalized'] as const)('in the %s format', (format) => {
    fc.assert(
      fc.property(record, fc.array(path, { maxLength: 5 }), fc.boolean(), (input, paths, ignoreRemoteData) => {
        const before = JSON.stringify(input);
        const body = formatRecord(input, { status: 201, bodyText: '{}', body: {} }, STAGE_SHAPE, { format, ignoreRemoteData, excludeFields: paths }).body;
        for (const p of paths) expect(has(body, p.split('.'))).toBe(false);
        if (ignoreRemoteData || format === 'normalized') expect(has(body, ['remote_data'])).toBe(false);
        expect(JSON.stringify(input)).toBe(before);
      }),
      { numRuns: 500 },
    );
  });

  it('excludeFields removes exactly the named paths', () => {
    fc.assert(
      fc.property(record, path, (input, p) => {
        const out = excludeFields(input, [p]);
        expect(has(out, p.split('.'))).toBe(false);
        const [top] = p.split('.');
        for (const k of Object.keys(input)) if (k !== top) expect(out[k]).toBe(input[k]);
      }),
      { numRuns: 500 },
    );
  });
});
