import Ajv, { str, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

/**
 * The ajv 8 instances of the contract checks (docs/pipeliner-sandbox.md "Contract tests"): strict mode, all errors,
 * the formats of Pipeliner's OpenAPI document (`uuid`, `uri`, `int32` from ajv-formats, `date-time` below) and the
 * keyword that rejects a read-only field sent without `validation-level` bit 8.
 */

/**
 * Custom keyword put by the request-body conversion in place of a read-only property when the request's
 * `validation-level` lacks bit 8. Its value names the field (`Step.pipeline_id`); it always fails.
 */
export const READ_ONLY_KEYWORD = 'x-read-only-without-bit-8';

/** Pipeliner's wire form of a date (pipeliner-api.md §5): `2024-07-09 12:51:48.050073+00:00`. */
const PIPELINER_WIRE_DATE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}[+-]\d{2}:\d{2}$/;

/** ajv-formats' RFC 3339 `date-time` (offset required; `T` or a space between date and time). */
const rfc3339 = (() => {
  const format = addFormats.get('date-time', 'full') as { validate?: unknown };
  if (typeof format.validate !== 'function') throw new Error('ajv-formats no longer exposes its date-time validator.');
  return format.validate as (text: string) => boolean;
})();

/**
 * `format: date-time` in answers: exactly the form Pipeliner sends (space separator, 6 fraction digits, `±HH:MM`
 * offset) with a real calendar date and time. The document's `2019-01-01T00:00:00` examples are placeholders.
 */
export function isPipelinerDateTime(text: string): boolean {
  return PIPELINER_WIRE_DATE.test(text) && rfc3339(text);
}

/**
 * `format: date-time` in requests: RFC 3339 with an offset (`T` or, as RFC 3339 §5.6 allows, a space between date
 * and time), so both `2024-09-19T12:30:45Z` and Pipeliner's own form are accepted.
 */
export function isRequestDateTime(text: string): boolean {
  return rfc3339(text);
}

/** Which side of the exchange an instance validates; the date-time format and coercion differ. */
export type AjvRole = 'request-body' | 'parameters' | 'response';

/** A new ajv instance for one role (parameters coerce their query-string text to the declared types). */
export function createAjv(role: AjvRole): Ajv {
  const ajv = new Ajv({
    strict: true,
    allErrors: true,
    allowUnionTypes: true,
    coerceTypes: role === 'parameters',
  });
  addFormats(ajv, { mode: 'full', formats: ['uuid', 'uri', 'int32'] });
  ajv.addFormat('date-time', { type: 'string', validate: role === 'response' ? isPipelinerDateTime : isRequestDateTime });
  ajv.addKeyword({
    keyword: READ_ONLY_KEYWORD,
    schemaType: 'string',
    code: (cxt) => cxt.fail(),
    error: {
      message: ({ schema }) =>
        str`is read-only (${String(schema)}): send it only with validation-level bit 8 ("allows to override readonly fields")`,
    },
  });
  return ajv;
}

/** A compiled validator, as the contract keeps them. */
export type Validator = ValidateFunction<unknown>;
