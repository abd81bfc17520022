import qs from 'qs';
import {
  LIST_PAGE_PARAMETERS,
  ResponseFormatSchema,
  TRUTO_LIST_ONLY_PARAMETERS,
  TRUTO_QUERY_PARAMETERS,
  UnicrmError,
  type RemoteQuery,
  type UnifiedListQuery,
  type UnifiedQuery,
  type ValidationFailure,
} from '@unicrm/model';

/**
 * Bounds of the query-string parser (DESIGN.md §2: "bounded depth/array/parameter limits").
 * Going past any of them is a 400, never a 500.
 */
export const QUERY_LIMITS = {
  /** Nesting depth of bracket keys (`remote_query[a][b][c]` is depth 3). */
  depth: 5,
  /** Highest array index / number of array items per key. */
  arrayLimit: 100,
  /** Number of `key=value` pairs. */
  parameterLimit: 200,
  /** Length of the whole query string, in characters (Node's HTTP server refuses request heads over 16 KiB anyway). */
  maxLength: 8 * 1024,
} as const;

/** Key segments that could reach an object's prototype; a query naming one is rejected. */
const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype']);
const SEGMENT_SPLIT = /[[\].]+/;
const FIELD_PATH = /^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// A Map, not an object literal: `'__proto__' in {}` is true, and a query value must never reach a prototype.
const BOOLEANS = new Map<string, boolean>([
  ['true', true],
  ['false', false],
  ['1', true],
  ['0', false],
]);

/** The options unicrm parses query strings with (qs), see {@link QUERY_LIMITS}. */
export const QS_PARSE_OPTIONS = Object.freeze({
  depth: QUERY_LIMITS.depth,
  strictDepth: true,
  arrayLimit: QUERY_LIMITS.arrayLimit,
  parameterLimit: QUERY_LIMITS.parameterLimit,
  throwOnLimitExceeded: true,
  allowPrototypes: false,
  allowDots: false,
  comma: false,
  duplicates: 'combine',
} as const);

/**
 * A query string of plain `key=value` pairs: keys and values of unreserved characters only (values may hold
 * commas), so nothing to decode, no brackets, no dots in keys.
 */
const FLAT_QUERY = /^[A-Za-z0-9_~-]+=[A-Za-z0-9._~,-]*(?:&[A-Za-z0-9_~-]+=[A-Za-z0-9._~,-]*)*$/;

/**
 * The common query (`integrated_account_id=...&truto_response_format=raw`) without qs: what qs answers for it
 * with {@link QS_PARSE_OPTIONS}, i.e. an object of strings. Returns undefined for anything else (repeated keys,
 * keys qs drops or unicrm refuses, encoded characters, brackets, too many pairs), which goes through qs.
 */
function parseFlatQuery(text: string): Record<string, unknown> | undefined {
  if (!FLAT_QUERY.test(text)) return undefined;
  const out: Record<string, unknown> = {};
  let pairs = 0;
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf('&', start);
    if (end < 0) end = text.length;
    const eq = text.indexOf('=', start);
    const key = text.slice(start, eq);
    // qs (allowPrototypes: false) drops keys of Object.prototype; `__proto__` & co. are a 400: both are qs's path.
    if (++pairs > QUERY_LIMITS.parameterLimit || key in out || key in Object.prototype || FORBIDDEN_SEGMENTS.has(key)) return undefined;
    out[key] = text.slice(eq + 1, end);
    start = end + 1;
  }
  return out;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

/**
 * Parses a raw query string (with or without the leading `?`) the way Truto's clients encode it:
 * qs brackets and indices (`a[]=x`, `a%5B0%5D=x`), repeats (`a=x&a=y`) and nested objects
 * (`remote_query[filter][name]=x`).
 * @returns a plain object of strings, arrays and objects
 * @throws UnicrmError 400 when a limit of {@link QUERY_LIMITS} is exceeded or a key names a prototype property
 */
export function parseQueryString(raw: string): Record<string, unknown> {
  const text = raw.startsWith('?') ? raw.slice(1) : raw;
  if (text.length > QUERY_LIMITS.maxLength) {
    throw UnicrmError.badRequest(`The query string is longer than ${QUERY_LIMITS.maxLength} characters.`);
  }
  const flat = parseFlatQuery(text);
  if (flat) return flat;
  for (const pair of text.split('&')) {
    if (!pair) continue;
    const key = safeDecode(pair.split('=', 1)[0] ?? '');
    const bad = key.split(SEGMENT_SPLIT).find((segment) => FORBIDDEN_SEGMENTS.has(segment));
    if (bad) {
      throw UnicrmError.validation([{ path: key, message: `the key segment "${bad}" is not allowed` }]);
    }
  }
  try {
    return qs.parse(text, QS_PARSE_OPTIONS) as Record<string, unknown>;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw UnicrmError.badRequest(
      `The query string exceeds a limit (${reason}). Limits: ${QUERY_LIMITS.parameterLimit} parameters, ` +
        `nesting depth ${QUERY_LIMITS.depth}, ${QUERY_LIMITS.arrayLimit} array items.`,
    );
  }
}

function parseBoolean(name: string, value: unknown, failures: ValidationFailure[]): boolean {
  if (value === undefined) return false;
  if (typeof value === 'boolean') return value;
  const known = typeof value === 'string' ? BOOLEANS.get(value.toLowerCase()) : undefined;
  if (known !== undefined) return known;
  failures.push({ path: name, message: 'must be a boolean: true, false, 1 or 0 (any case)' });
  return false;
}

function parseExcludeFields(value: unknown, failures: ValidationFailure[]): string[] {
  if (value === undefined) return [];
  let items: unknown[];
  if (typeof value === 'string') items = [value];
  else if (Array.isArray(value)) items = value;
  else if (typeof value === 'object' && value !== null && Object.keys(value).every((k) => /^\d+$/.test(k))) {
    // qs turns indices it will not make an array of (gaps, order) into an object keyed by index.
    items = Object.entries(value)
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([, v]) => v);
  } else {
    failures.push({ path: 'truto_exclude_fields', message: 'must be a list of field names, e.g. truto_exclude_fields[]=id' });
    return [];
  }
  const fields: string[] = [];
  for (const item of items) {
    if (typeof item !== 'string') {
      failures.push({ path: 'truto_exclude_fields', message: 'every item must be a field name (a string)' });
      continue;
    }
    for (const part of item.split(',')) {
      const field = part.trim();
      if (!field) continue;
      if (!FIELD_PATH.test(field)) {
        failures.push({ path: 'truto_exclude_fields', message: `"${field}" is not a field name or dot path` });
      } else if (!fields.includes(field)) {
        fields.push(field);
      }
    }
  }
  return fields;
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parameters a list reads itself; every other key of a list query is a filter. */
const LIST_OWN_PARAMETERS = new Set<string>(['integrated_account_id', 'remote_query', ...TRUTO_QUERY_PARAMETERS, ...LIST_PAGE_PARAMETERS]);

/**
 * Validates the query of a unified call (DESIGN.md §2 "Query"; create-stages.txt "Query parameters").
 * @param input a raw query string, or an object of the same parameters (what an SDK caller passes:
 *   booleans may be real booleans, arrays real arrays)
 * @returns the typed query with defaults applied: format `unified`, flags false, no excluded fields, empty remote_query
 * @throws UnicrmError 400 with `details.failures`, one per bad parameter; unknown `truto_*` parameters
 *   are named together with the allowed ones, list-only ones (`truto_key_by`, `truto_ignore_limit`) said to be
 *   so. Other unknown parameters are ignored.
 */
export function parseUnifiedQuery(input: string | Record<string, unknown>): UnifiedQuery {
  const params = typeof input === 'string' ? parseQueryString(input) : input;
  const failures: ValidationFailure[] = [];
  for (const key of TRUTO_LIST_ONLY_PARAMETERS) {
    if (params[key] !== undefined) failures.push({ path: key, message: 'applies to lists only' });
  }
  const query = parseCommon(params, failures);
  if (failures.length > 0) throw queryError(failures);
  return query;
}

function positiveInteger(name: string, value: unknown, failures: ValidationFailure[]): number | undefined {
  if (value === undefined) return undefined;
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text === 'string' && /^[0-9]{1,9}$/.test(text) && Number(text) >= 1) return Number(text);
  failures.push({ path: name, message: 'must be a whole number >= 1' });
  return undefined;
}

/**
 * Validates the query of a unified list (truto-contract.md §5.3, [ST-LIST]): the parameters of
 * {@link parseUnifiedQuery} plus `limit`, `next_cursor`, `truto_key_by` and `truto_ignore_limit`. Every other
 * parameter is returned in `filters`, for the integration's filter schema (which refuses the ones it lacks).
 * @throws UnicrmError 400 with `details.failures`, one per bad parameter
 */
export function parseUnifiedListQuery(input: string | Record<string, unknown>): UnifiedListQuery {
  const params = typeof input === 'string' ? parseQueryString(input) : input;
  const failures: ValidationFailure[] = [];
  const query = parseCommon(params, failures);
  const limit = positiveInteger('limit', params.limit, failures);
  let nextCursor: string | undefined;
  if (params.next_cursor !== undefined) {
    if (typeof params.next_cursor === 'string' && params.next_cursor !== '') nextCursor = params.next_cursor;
    else failures.push({ path: 'next_cursor', message: 'must be a cursor this API gave out (a string)' });
  }
  let keyBy: string | undefined;
  if (params.truto_key_by !== undefined) {
    if (typeof params.truto_key_by === 'string' && FIELD_PATH.test(params.truto_key_by)) keyBy = params.truto_key_by;
    else failures.push({ path: 'truto_key_by', message: 'must be a field name or dot path, e.g. truto_key_by=id' });
  }
  const ignoreLimit = parseBoolean('truto_ignore_limit', params.truto_ignore_limit, failures);
  const filters: Record<string, unknown> = {};
  for (const key of Object.keys(params)) if (!LIST_OWN_PARAMETERS.has(key)) filters[key] = params[key];
  if (failures.length > 0) throw queryError(failures);
  return {
    ...query,
    ...(limit !== undefined && { limit }),
    ...(nextCursor !== undefined && { next_cursor: nextCursor }),
    ...(keyBy !== undefined && { truto_key_by: keyBy }),
    truto_ignore_limit: ignoreLimit,
    filters,
  };
}

/** The 400 for a query's failures; a missing account id adds `missing_required_query_parameters`. */
function queryError(failures: ValidationFailure[]): UnicrmError {
  const missing = failures.some((f) => f.path === 'integrated_account_id' && f.message === 'is required');
  const error = UnicrmError.invalid('Invalid query', failures);
  if (missing) {
    error.body.truto_error_insight = {
      missing_required_query_parameters: {
        description: 'These query parameters are required',
        value: ['integrated_account_id'],
      },
    };
  }
  return error;
}

/** The parameters every unified call takes; failures are added to `failures`. */
function parseCommon(params: Record<string, unknown>, failures: ValidationFailure[]): UnifiedQuery {
  for (const key of Object.keys(params)) {
    if (key.startsWith('truto_') && !(TRUTO_QUERY_PARAMETERS as readonly string[]).includes(key)) {
      failures.push({ path: key, message: `unknown parameter; allowed truto_* parameters: ${TRUTO_QUERY_PARAMETERS.join(', ')}` });
    }
  }

  const accountId = params.integrated_account_id;
  let integratedAccountId = '';
  if (accountId === undefined || accountId === '') {
    failures.push({ path: 'integrated_account_id', message: 'is required' });
  } else if (typeof accountId !== 'string' || !UUID.test(accountId)) {
    failures.push({ path: 'integrated_account_id', message: 'must be a UUID, e.g. 62f44730-dd91-461e-bd6a-aedd9e0ad79d' });
  } else {
    integratedAccountId = accountId.toLowerCase();
  }

  const formatResult = ResponseFormatSchema.safeParse(params.truto_response_format ?? 'unified');
  if (!formatResult.success) {
    failures.push({ path: 'truto_response_format', message: `must be one of: ${ResponseFormatSchema.options.join(', ')}` });
  }

  const ignoreRemoteData = parseBoolean('truto_ignore_remote_data', params.truto_ignore_remote_data, failures);
  const excludeFields = parseExcludeFields(params.truto_exclude_fields, failures);

  let remoteQuery: RemoteQuery = {};
  if (params.remote_query !== undefined) {
    if (isPlainRecord(params.remote_query)) remoteQuery = params.remote_query as RemoteQuery;
    else failures.push({ path: 'remote_query', message: 'must be an object, e.g. remote_query[foo]=bar' });
  }

  return {
    integrated_account_id: integratedAccountId,
    truto_response_format: formatResult.data ?? 'unified',
    truto_ignore_remote_data: ignoreRemoteData,
    truto_exclude_fields: excludeFields,
    remote_query: remoteQuery,
  };
}
