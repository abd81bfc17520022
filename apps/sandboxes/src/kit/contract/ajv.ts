import Ajv, { str, type ValidateFunction } from 'ajv';
import Ajv2020 from 'ajv/dist/2020';
import type AjvCore from 'ajv/dist/core';
import addFormats from 'ajv-formats';

/**
 * The ajv 8 instances of the contract checks (docs/sandboxes.md "Contract checks"): strict where it changes results (a
 * keyword or format the conversion does not know fails at load, never silently passes), all errors, every format of ajv-formats' full
 * mode (OpenAPI's `int32`, `int64`, `float`, `double`, `byte`, `binary`, `password` and JSON Schema's `date-time`,
 * `uuid`, `uri`, `email`, ...), the provider's own format overrides, and the keyword that rejects a read-only field in
 * a request. OpenAPI 3.0 schemas (converted) compile with draft-07 ajv, OpenAPI 3.1 ones with the 2020-12 dialect.
 */

/**
 * Custom keyword put by the request-body conversion in place of a read-only property the request may not write. Its
 * value names the field (`Step.pipeline_id`); it always fails.
 */
export const READ_ONLY_KEYWORD = 'x-sandbox-read-only';

/** The default hint of a read-only violation: what OpenAPI says of `readOnly` in requests. */
export const DEFAULT_READ_ONLY_HINT = 'the document marks it readOnly, so a request should not send it';

/** ajv-formats' RFC 3339 `date-time` (offset required; `T` or a space between date and time). */
export const isRfc3339DateTime = (() => {
  const format = addFormats.get('date-time', 'full') as { validate?: unknown };
  if (typeof format.validate !== 'function') throw new Error('ajv-formats no longer exposes its date-time validator.');
  return format.validate as (text: string) => boolean;
})();

/** Which side of the exchange an instance validates; formats and coercion differ. */
export type AjvRole = 'request-body' | 'parameters' | 'response';

/** A string format check (`true` when `text` is in the format). */
export type FormatCheck = (text: string) => boolean;

/** How to build the ajv instances of one contract. */
export interface AjvSettings {
  /** `3.0`: converted schemas on draft-07; `3.1`: JSON Schema 2020-12. */
  dialect: '3.0' | '3.1';
  /** String formats that replace the defaults on this side (Pipeliner: its wire `date-time` in answers). */
  formats?: Record<string, FormatCheck>;
  /** Said after `is read-only (X.y): ` in the violation of a read-only field; default {@link DEFAULT_READ_ONLY_HINT}. */
  readOnlyHint?: string;
}

/** A new ajv instance for one role (parameters coerce their query-string text to the declared types). */
export function createAjv(role: AjvRole, settings: AjvSettings): AjvCore {
  // Strict where it changes what passes: an unknown keyword or format fails at load. Not strict on style, which never
  // changes a result and which the providers' documents (not ours) need not follow: `maxLength` without `type: string`
  // (strictTypes), a tuple without `minItems` (strictTuples), a required name without a property (strictRequired).
  const options = {
    strict: true,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
    allErrors: true,
    allowUnionTypes: true,
    coerceTypes: role === 'parameters',
  };
  const ajv: AjvCore = settings.dialect === '3.1' ? new Ajv2020(options) : new Ajv(options);
  addFormats(ajv, { mode: 'full' });
  for (const [name, validate] of Object.entries(settings.formats ?? {})) ajv.addFormat(name, { type: 'string', validate });
  const hint = settings.readOnlyHint ?? DEFAULT_READ_ONLY_HINT;
  ajv.addKeyword({
    keyword: READ_ONLY_KEYWORD,
    schemaType: 'string',
    code: (cxt) => cxt.fail(),
    error: { message: ({ schema }) => str`is read-only (${String(schema)}): ${hint}` },
  });
  return ajv;
}

/** A compiled validator, as the contract keeps them. */
export type Validator = ValidateFunction<unknown>;
