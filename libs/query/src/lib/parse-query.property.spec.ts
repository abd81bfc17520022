import { isUnicrmError } from '@unicrm/model';
import fc from 'fast-check';
import qs from 'qs';
import { parseUnifiedQuery } from './parse-query';

// Property: whatever string arrives as a query, the parser answers a typed query or a 400-shaped
// UnicrmError; it never throws anything else and never touches Object.prototype.
const ID = '62f44730-dd91-461e-bd6a-aedd9e0ad79d';
const fragment = fc.oneof(
  fc.string(),
  fc.constantFrom('[', ']', '%5B', '%5D', '&', '=', '%', '%ZZ', '__proto__', 'constructor', 'prototype', '.', ',', '[]', '[0]'),
  fc.constantFrom('truto_exclude_fields', 'truto_response_format', 'truto_ignore_remote_data', 'remote_query', 'integrated_account_id'),
);

function checkAnswer(text: string): void {
  try {
    const query = parseUnifiedQuery(text);
    expect(['unified', 'raw', 'normalized']).toContain(query.truto_response_format);
    expect(typeof query.truto_ignore_remote_data).toBe('boolean');
    expect(Array.isArray(query.truto_exclude_fields)).toBe(true);
  } catch (error) {
    expect(isUnicrmError(error)).toBe(true);
    expect((error as { statusCode: number }).statusCode).toBe(400);
    expect((error as { body: { error: string } }).body.error).toBe('Bad Request');
  }
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
}

describe('parseUnifiedQuery on any input', () => {
  it('answers a query or a 400 for any string', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), checkAnswer), { numRuns: 500 });
  });

  it('answers a query or a 400 for strings made of query syntax', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fragment, fragment), { maxLength: 30 }), (pairs) => {
        checkAnswer(`integrated_account_id=${ID}&${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`);
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips any list of field names in every encoding', () => {
    const field = fc.stringMatching(/^[a-z_][a-z0-9_]{0,8}(\.[a-z_][a-z0-9_]{0,8}){0,2}$/);
    fc.assert(
      fc.property(fc.uniqueArray(field, { minLength: 1, maxLength: 10 }), (fields) => {
        const encodings = [
          qs.stringify({ integrated_account_id: ID, truto_exclude_fields: fields }),
          qs.stringify({ integrated_account_id: ID, truto_exclude_fields: fields }, { arrayFormat: 'brackets' }),
          qs.stringify({ integrated_account_id: ID, truto_exclude_fields: fields }, { arrayFormat: 'repeat' }),
          `integrated_account_id=${ID}&truto_exclude_fields=${fields.join(',')}`,
        ];
        for (const text of encodings) expect(parseUnifiedQuery(text).truto_exclude_fields).toEqual(fields);
      }),
      { numRuns: 200 },
    );
  });
});
