import type { FieldShape, RemoteResult, ResponseFormat } from '@unicrm/model';
import { excludeFields } from './exclude-fields';

type JsonObject = Record<string, unknown>;

/** The response-shaping options of a unified query (DESIGN.md §2 "Formats"). */
export interface FormatOptions {
  format: ResponseFormat;
  ignoreRemoteData: boolean;
  excludeFields: readonly string[];
}

/**
 * A formatted answer. `body` is the JSON value to return; for the `raw` format `rawText` holds the
 * provider's body byte for byte, which an HTTP front door sends instead of re-serialising `body`.
 */
export interface FormattedResponse {
  body: unknown;
  rawText?: string;
}

function fill(record: JsonObject, shape: FieldShape): JsonObject {
  const out: JsonObject = {};
  for (const [field, sub] of Object.entries(shape)) {
    const value = record[field];
    if (value === undefined || value === null) out[field] = null;
    else if (sub === true || typeof value !== 'object' || Array.isArray(value)) out[field] = value;
    else out[field] = fill(value as JsonObject, sub);
  }
  return out;
}

/**
 * `normalized`: every field of `shape` present in schema order, missing values `null`, no
 * `remote_data` (unicrm's definition; Truto publishes none: DESIGN.md §2).
 */
export function normalize(record: JsonObject, shape: FieldShape): JsonObject {
  return fill(record, shape);
}

/**
 * Shapes one unified record for the caller (DESIGN.md §2 "Formats"):
 * - `unified`: the record; `remote_data` dropped when `ignoreRemoteData`; then `excludeFields` removed.
 * - `normalized`: {@link normalize}d to `shape`; then `excludeFields` removed (the remote-data flag has nothing left to do).
 * - `raw`: the provider's body verbatim (`remote.body`, with `rawText` for byte-exact output); both field flags ignored.
 */
export function formatRecord(
  unified: JsonObject,
  remote: RemoteResult,
  shape: FieldShape,
  options: FormatOptions,
): FormattedResponse {
  if (options.format === 'raw') return { body: remote.body, rawText: remote.bodyText };
  return { body: formatUnified(unified, shape, options) };
}

/**
 * One record in the `unified` or `normalized` format, as {@link formatRecord} shapes it (for the records of a list,
 * whose `raw` format is the provider's whole page).
 */
export function formatUnified(unified: JsonObject, shape: FieldShape, options: FormatOptions): JsonObject {
  if (options.format === 'normalized') return excludeFields(normalize(unified, shape), options.excludeFields);
  let record = unified;
  if (options.ignoreRemoteData && 'remote_data' in record) {
    const { remote_data: _dropped, ...rest } = record;
    record = rest;
  }
  return excludeFields(record, options.excludeFields);
}
