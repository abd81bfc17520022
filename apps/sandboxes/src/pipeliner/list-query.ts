import { formatPipelinerDate, parseDateInput } from './dates';
import { invalidParameterError } from './errors';
import type { FieldType } from './fields';
import { mergePathTrees, nestedBranches, parsePathList, type PathTree } from './render';

/**
 * Query parameters of list and get (pipeliner-api.md §4, §6): `first`/`last`, `after`/`before` cursors,
 * `filter[field]` + `filter-op[field]`, `order-by`, `load-only`, `expand`, `include-deleted`, and the legacy
 * `limit`/`offset`. Invalid values answer 400 code 117 (sandbox choice).
 */

/** Default and maximum page size (§4: `first` defaults to 30, max 100). Larger values are clamped to 100. */
export const DEFAULT_PAGE_SIZE = 30;
export const MAX_PAGE_SIZE = 100;

export const FILTER_OPS = [
  'eq', 'ieq', 'not-eq', 'not-ieq', 'contains', 'starts', 'ends', 'icontains', 'istarts', 'iends',
  'null', 'not-null', 'empty', 'not-empty', 'gt', 'gte', 'lt', 'lte', 'between',
] as const;
export type FilterOp = (typeof FILTER_OPS)[number];

type Scalar = string | number | boolean | null;

export interface Filter {
  field: string;
  type: FieldType;
  op: FilterOp;
  /** Typed operand(s); two for `between`. */
  operands: Scalar[];
  /** The raw text, for string operators. */
  text: string;
}

export interface OrderBy {
  field: string;
  type: FieldType;
  descending: boolean;
}

/** Parameters shared by get and list. */
export interface ReadOptions {
  includeDeleted: boolean;
  /** Relations to expand (from `expand`, plus relations reached by dotted `load-only` paths). */
  expand: PathTree;
  /** `load-only` fields, or null for all fields. */
  loadOnly: PathTree | null;
}

export interface ListQuery extends ReadOptions {
  first?: number;
  last?: number;
  after?: Scalar[];
  before?: Scalar[];
  limit?: number;
  offset?: number;
  filters: Filter[];
  /** Explicit sort keys; the id is always the final tie-breaker (and the only key by default, §4). */
  orderBy: OrderBy[];
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off', '']);

function parseBoolean(text: string, what: string): boolean {
  const word = text.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  throw invalidParameterError(`Invalid boolean value '${text}' of ${what}.`);
}

function parseCount(params: URLSearchParams, name: string): number | undefined {
  const text = params.get(name);
  if (text === null) return undefined;
  if (!/^\d+$/.test(text.trim())) throw invalidParameterError(`Parameter '${name}' must be a non-negative integer.`);
  return Number(text.trim());
}

/** `expand`, `load-only` and `include-deleted` (also accepted spelled `include_deleted`, §5). */
export function parseReadOptions(params: URLSearchParams): ReadOptions {
  const includeText = params.get('include-deleted') ?? params.get('include_deleted');
  const loadOnlyText = params.get('load-only');
  const loadOnly = loadOnlyText === null ? null : parsePathList(loadOnlyText);
  let expand = parsePathList(params.get('expand') ?? '');
  if (loadOnly) expand = mergePathTrees(expand, nestedBranches(loadOnly));
  return {
    includeDeleted: includeText === null ? false : parseBoolean(includeText, "'include-deleted'"),
    expand,
    loadOnly,
  };
}

/** Converts filter text to the field's type; throws 400 when it does not fit. */
function typedOperand(text: string, type: FieldType, field: string): Scalar {
  switch (type) {
    case 'int':
      if (!/^-?\d+$/.test(text.trim())) throw invalidParameterError(`Invalid integer value '${text}' of filter '${field}'.`);
      return Number(text.trim());
    case 'bool':
      return parseBoolean(text, `filter '${field}'`);
    case 'date': {
      const micros = parseDateInput(text);
      if (micros === null) throw invalidParameterError(`Invalid date value '${text}' of filter '${field}'.`);
      return micros;
    }
    case 'uuid':
      return text.trim().toLowerCase();
    default:
      return text;
  }
}

const VALUELESS_OPS: ReadonlySet<FilterOp> = new Set(['null', 'not-null', 'empty', 'not-empty']);

/**
 * Parses a list request's query string (already split by URLSearchParams) against an entity's scalar fields.
 * @throws PipelinerError 400 (code 117) for unknown fields or operators, bad numbers, dates or cursors.
 */
export function parseListQuery(params: URLSearchParams, fields: Readonly<Record<string, FieldType>>): ListQuery {
  const values = new Map<string, string>();
  const ops = new Map<string, string>();
  for (const [key, value] of params) {
    const match = /^(filter|filter-op)\[([^\]]*)\]$/.exec(key);
    if (!match) continue;
    const target = match[1] === 'filter' ? values : ops;
    if (!target.has(match[2])) target.set(match[2], value);
  }
  const filters: Filter[] = [];
  for (const field of new Set([...values.keys(), ...ops.keys()])) {
    const type = fields[field];
    if (!type) throw invalidParameterError(`Unknown field '${field}' in filter.`);
    const opText = (ops.get(field) ?? 'eq').trim().toLowerCase();
    if (!(FILTER_OPS as readonly string[]).includes(opText)) {
      throw invalidParameterError(`Unknown filter operator '${opText}' for field '${field}'.`);
    }
    const op = opText as FilterOp;
    const text = values.get(field);
    if (text === undefined && !VALUELESS_OPS.has(op)) {
      throw invalidParameterError(`Missing value of filter '${field}' for operator '${op}'.`);
    }
    let operands: Scalar[] = [];
    if (text !== undefined && !VALUELESS_OPS.has(op)) {
      if (op === 'between') {
        const parts = text.split(',');
        if (parts.length !== 2) throw invalidParameterError(`Filter '${field}' with 'between' needs two comma-separated values.`);
        operands = parts.map((part) => typedOperand(part, type, field));
      } else {
        operands = [typedOperand(text, type, field)];
      }
    }
    filters.push({ field, type, op, operands, text: text ?? '' });
  }

  const orderBy: OrderBy[] = [];
  for (const raw of (params.get('order-by') ?? '').split(',')) {
    const item = raw.trim();
    if (!item) continue;
    const descending = item.startsWith('-');
    const field = descending ? item.slice(1) : item.replace(/^\+/, '');
    const type = fields[field];
    if (!type) throw invalidParameterError(`Unknown field '${field}' in order-by.`);
    orderBy.push({ field, type, descending });
  }

  const first = parseCount(params, 'first');
  const last = parseCount(params, 'last');
  const limit = parseCount(params, 'limit');
  const offset = parseCount(params, 'offset');
  const afterText = params.get('after');
  const beforeText = params.get('before');
  return {
    ...parseReadOptions(params),
    first: first === undefined ? undefined : Math.min(first, MAX_PAGE_SIZE),
    last: last === undefined ? undefined : Math.min(last, MAX_PAGE_SIZE),
    limit: limit === undefined ? undefined : Math.min(limit, MAX_PAGE_SIZE),
    offset,
    after: afterText ? decodeCursor(afterText, orderBy) : undefined,
    before: beforeText ? decodeCursor(beforeText, orderBy) : undefined,
    filters,
    orderBy,
  };
}

const textOf = (value: Scalar, type: FieldType): string =>
  value === null ? '' : type === 'date' ? formatPipelinerDate(value as number) : String(value);

function compareScalars(a: Scalar, b: Scalar): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** True when a record's field value passes one filter (§6 operator list). */
export function matchesFilter(value: Scalar, filter: Filter): boolean {
  const [operand, upper] = filter.operands;
  const text = textOf(value, filter.type);
  const needle = filter.text;
  switch (filter.op) {
    case 'eq':
      return value !== null && compareScalars(norm(value, filter.type), operand) === 0;
    case 'not-eq':
      return value === null || compareScalars(norm(value, filter.type), operand) !== 0;
    case 'ieq':
      return value !== null && text.toLowerCase() === needle.toLowerCase();
    case 'not-ieq':
      return value === null || text.toLowerCase() !== needle.toLowerCase();
    case 'contains':
      return value !== null && text.includes(needle);
    case 'starts':
      return value !== null && text.startsWith(needle);
    case 'ends':
      return value !== null && text.endsWith(needle);
    case 'icontains':
      return value !== null && text.toLowerCase().includes(needle.toLowerCase());
    case 'istarts':
      return value !== null && text.toLowerCase().startsWith(needle.toLowerCase());
    case 'iends':
      return value !== null && text.toLowerCase().endsWith(needle.toLowerCase());
    case 'null':
      return value === null;
    case 'not-null':
      return value !== null;
    case 'empty':
      return value === null || text === '';
    case 'not-empty':
      return value !== null && text !== '';
    case 'gt':
      return value !== null && compareScalars(norm(value, filter.type), operand) > 0;
    case 'gte':
      return value !== null && compareScalars(norm(value, filter.type), operand) >= 0;
    case 'lt':
      return value !== null && compareScalars(norm(value, filter.type), operand) < 0;
    case 'lte':
      return value !== null && compareScalars(norm(value, filter.type), operand) <= 0;
    case 'between':
      return (
        value !== null &&
        compareScalars(norm(value, filter.type), operand) >= 0 &&
        compareScalars(norm(value, filter.type), upper) <= 0
      );
  }
}

const norm = (value: Scalar, type: FieldType): Scalar => (type === 'uuid' && typeof value === 'string' ? value.toLowerCase() : value);

/** Orders two sort tuples; nulls sort last ascending and first descending (PostgreSQL's default, sandbox choice). */
function compareTuples(a: Scalar[], b: Scalar[], orderBy: OrderBy[]): number {
  for (let i = 0; i < a.length; i += 1) {
    const descending = orderBy[i]?.descending ?? false;
    const x = a[i];
    const y = b[i];
    let result: number;
    if (x === null || y === null) result = x === y ? 0 : x === null ? 1 : -1;
    else result = compareScalars(x, y);
    if (result !== 0) return descending ? -result : result;
  }
  return 0;
}

/**
 * Opaque cursor (§4, observed format): base64 of a JSON array of the sort values followed by the id,
 * e.g. `["01", "b2f08246-..."]`. Dates are written in Pipeliner's UTC format.
 */
export function encodeCursor(tuple: Scalar[], orderBy: OrderBy[]): string {
  const values = tuple.map((value, index) => {
    const type = orderBy[index]?.type;
    return type === 'date' && typeof value === 'number' ? formatPipelinerDate(value) : value;
  });
  return Buffer.from(`[${values.map((value) => JSON.stringify(value)).join(', ')}]`, 'utf8').toString('base64');
}

function decodeCursor(cursor: string, orderBy: OrderBy[]): Scalar[] {
  const invalid = () => invalidParameterError(`Invalid cursor '${cursor}'.`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(parsed) || parsed.length !== orderBy.length + 1) throw invalid();
  return parsed.map((value: unknown, index) => {
    if (value !== null && !['string', 'number', 'boolean'].includes(typeof value)) throw invalid();
    const type = index < orderBy.length ? orderBy[index].type : 'uuid';
    if (type === 'date' && typeof value === 'string') {
      const micros = parseDateInput(value);
      if (micros === null) throw invalid();
      return micros;
    }
    return value as Scalar;
  });
}

/** `page_info` of the list envelope (§4). */
export interface PageInfo {
  start_cursor: string | null;
  end_cursor: string | null;
  has_previous_page: boolean;
  has_next_page: boolean;
}

export interface ListResult<R> {
  /** Size of the filtered set, regardless of paging (§4 `total`). */
  total: number;
  /** Null when legacy `limit`/`offset` were used (§4: page_info only without them). */
  pageInfo: PageInfo | null;
  items: R[];
}

/**
 * Filters, sorts and pages records. `valueOf(record, field)` gives a scalar field's value (dates as microseconds).
 * Soft-deleted records are dropped unless `includeDeleted` (§5).
 */
export function runList<R extends { id: string; is_deleted: boolean }>(
  records: R[],
  query: ListQuery,
  valueOf: (record: R, field: string) => Scalar,
): ListResult<R> {
  const filtered = records.filter(
    (record) => (query.includeDeleted || !record.is_deleted) && query.filters.every((f) => matchesFilter(valueOf(record, f.field), f)),
  );
  const tupleOf = (record: R): Scalar[] => [...query.orderBy.map((o) => valueOf(record, o.field)), record.id];
  const keyed = filtered.map((record) => ({ record, tuple: tupleOf(record) }));
  keyed.sort((a, b) => compareTuples(a.tuple, b.tuple, query.orderBy));

  if (query.limit !== undefined || query.offset !== undefined) {
    const offset = query.offset ?? 0;
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    return { total: keyed.length, pageInfo: null, items: keyed.slice(offset, offset + limit).map((k) => k.record) };
  }

  let start = 0;
  let end = keyed.length;
  if (query.after) {
    const after = query.after;
    const index = keyed.findIndex((k) => compareTuples(k.tuple, after, query.orderBy) > 0);
    start = index === -1 ? keyed.length : index;
  }
  if (query.before) {
    const before = query.before;
    const index = keyed.findIndex((k) => compareTuples(k.tuple, before, query.orderBy) >= 0);
    end = Math.max(start, index === -1 ? keyed.length : index);
  }
  const first = query.first ?? (query.last === undefined ? DEFAULT_PAGE_SIZE : undefined);
  if (first !== undefined) end = Math.min(end, start + first);
  if (query.last !== undefined) start = Math.max(start, end - query.last);

  const page = keyed.slice(start, end);
  const pageInfo: PageInfo =
    page.length === 0
      ? { start_cursor: null, end_cursor: null, has_previous_page: false, has_next_page: false }
      : {
          start_cursor: encodeCursor(page[0].tuple, query.orderBy),
          end_cursor: encodeCursor(page[page.length - 1].tuple, query.orderBy),
          has_previous_page: start > 0,
          has_next_page: end < keyed.length,
        };
  return { total: keyed.length, pageInfo, items: page.map((k) => k.record) };
}
