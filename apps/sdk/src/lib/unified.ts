import { UnicrmError, type UnifiedMethod } from '@unicrm/model';
import { attachResponseMeta, PREFERENCE_APPLIED_HEADER, REPLAYED_HEADER } from './meta';
import type { BatchOptions, BatchQuery, ListQuery, PagedList, ProxyMethod, ProxyRequest, UnifiedRecordQuery } from './types';

/**
 * The transport-neutral half of the SDK: one generic implementation of the unified methods (list, get, create,
 * update, delete) for any `model/resource`, the paging of lists and the proxy, over a {@link Transport} that each
 * client supplies (the embedded one calls the core, the remote one the HTTP API). Adding a resource to the SDK is
 * a line (`unifiedResource(send, 'crm', 'contacts')`) and its types.
 */

/** A call on the unified API, as a transport carries it. */
export interface UnifiedCall {
  kind: 'unified';
  method: UnifiedMethod;
  model: string;
  resource: string;
  /** The record's id (get, update, delete). */
  id?: string;
  /** The query object, as the caller gave it (each transport encodes it with qs). */
  query: object;
  /** The JSON body (create, update). */
  body?: unknown;
  /** The caller's `Idempotency-Key`, `false` for none, undefined to let the transport decide (writes only). */
  idempotencyKey?: string | false;
}

/** A call on the proxy, as a transport carries it. */
export interface ProxyCall {
  kind: 'proxy';
  method: ProxyMethod;
  resource: string;
  id?: string;
  query: object;
  body?: unknown;
  idempotencyKey?: string | false;
}

/**
 * A batch of writes on the unified API (`POST /unified/<model>/<resource>/batch`), as a transport carries it: the
 * query (with `dry_run` when asked), the body `{ items }`, the batch's own key, and whether only ids are wanted
 * (`Prefer: return=minimal`).
 */
export interface BatchCall {
  kind: 'batch';
  model: string;
  resource: string;
  query: object;
  /** `{ items: [...] }`, as the caller gave the items. */
  body: { items: unknown };
  /** The batch's `Idempotency-Key`, `false` for none, undefined to let the transport decide. */
  idempotencyKey?: string | false;
  /** True to ask for `Prefer: return=minimal`: each item's result is `{ id }` only. */
  minimal?: boolean;
}

/** A successful answer, whichever transport got it. */
export interface Answer {
  statusCode: number;
  /** The parsed JSON body (`null` for an empty proxy answer). */
  body: unknown;
  /**
   * The answer's headers that the SDK reads (lower-case names): `idempotent-replayed`, the list cursor headers,
   * `preference-applied` (a batch).
   */
  headers: Record<string, string>;
  /** How many attempts the call took (the remote client's retries count). */
  attempts: number;
  /** The `Idempotency-Key` the call carried, if any (the remote client's own unless given one). */
  idempotencyKey?: string;
}

/** Carries a call: the core in process, or HTTP. Rejects with a UnicrmError. */
export type Transport = (call: UnifiedCall | ProxyCall | BatchCall) => Promise<Answer>;

/** The headers of a `raw` list answer that carry its cursors (the body is the provider's page as it came). */
export const NEXT_CURSOR_HEADER = 'unicrm-next-cursor';
export const PREV_CURSOR_HEADER = 'unicrm-prev-cursor';

/**
 * Checks an id or a resource name that goes into a URL path: a non-empty string, and not `.` or `..` (a URL path
 * cannot carry those: an HTTP client resolves them away, and `GET /unified/crm/stages/.` would read the list). Both
 * transports refuse the same values with the same error, before any call.
 * @throws UnicrmError 400 naming the parameter
 */
export function checkPathSegment(name: 'id' | 'resource', value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw UnicrmError.validation([
      { path: name, message: name === 'id' ? 'must be the id of a record: 1 to 512 characters, no control characters' : 'must be a non-empty resource name' },
    ]);
  }
  if (value === '.' || value === '..') {
    throw UnicrmError.validation([{ path: name, message: `cannot be "${value}": a URL path cannot carry it` }]);
  }
  return value;
}

/** The value of a header in a record of headers, whatever the letter case of its name. */
export function headerOf(headers: Record<string, string> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value;
  return undefined;
}

/** Attaches what the SDK knows of an answer besides its body; `cursors` for a list page. */
function withMeta<T>(answer: Answer, cursors?: { nextCursor: string | null; prevCursor: string | null }): T {
  const applied = headerOf(answer.headers, PREFERENCE_APPLIED_HEADER);
  return attachResponseMeta(answer.body as T, {
    statusCode: answer.statusCode,
    replayed: headerOf(answer.headers, REPLAYED_HEADER) === 'true',
    ...(answer.idempotencyKey !== undefined && { idempotencyKey: answer.idempotencyKey }),
    attempts: answer.attempts,
    ...(applied !== undefined && { preferenceApplied: applied }),
    ...cursors,
  });
}

/** The cursors of a page: the envelope's, or in the `raw` format the API's cursor headers. */
function cursorsOf(answer: Answer, raw: boolean): { nextCursor: string | null; prevCursor: string | null } {
  if (raw) {
    return { nextCursor: headerOf(answer.headers, NEXT_CURSOR_HEADER) || null, prevCursor: headerOf(answer.headers, PREV_CURSOR_HEADER) || null };
  }
  const body = answer.body as { next_cursor?: unknown; prev_cursor?: unknown } | null;
  const cursor = (value: unknown) => (typeof value === 'string' && value !== '' ? value : null);
  return { nextCursor: cursor(body?.next_cursor), prevCursor: cursor(body?.prev_cursor) };
}

/** The records of an envelope page: `result` as an array, or the values of a keyed `result`. */
function recordsOf(page: unknown): unknown[] {
  const result = (page as { result?: unknown } | null)?.result;
  if (Array.isArray(result)) return result;
  if (typeof result === 'object' && result !== null) return Object.values(result);
  return [];
}

/**
 * A {@link PagedList} over `fetchPage`: lazy (nothing is fetched until iterated), each iteration a new walk from the
 * query's `next_cursor` (or the first page), following each page's next cursor until there is none.
 * @param fetchPage fetches the page at a cursor (undefined: the first page)
 * @param raw true for the `raw` format: the cursors come from the headers, and a page is its own item
 * @param what the call, for the error of an API that repeats a cursor
 * @param start the cursor to start from (the query's `next_cursor`), if any
 */
export function pagedList<Page, Item>(
  fetchPage: (cursor: string | undefined) => Promise<Answer>,
  raw: boolean,
  what: string,
  start?: string,
): PagedList<Page, Item> {
  async function* pages(): AsyncGenerator<Page, void, undefined> {
    let cursor = start;
    for (;;) {
      const answer = await fetchPage(cursor);
      const cursors = cursorsOf(answer, raw);
      yield withMeta<Page>(answer, cursors);
      if (cursors.nextCursor === null) return;
      if (cursors.nextCursor === cursor) {
        throw new UnicrmError(502, `The API answered ${what} with the next_cursor it was given: the list would never end. Stopped.`);
      }
      cursor = cursors.nextCursor;
    }
  }
  async function* items(): AsyncGenerator<Item, void, undefined> {
    for await (const page of pages()) {
      if (raw) yield page as unknown as Item;
      else for (const record of recordsOf(page)) yield record as Item;
    }
  }
  return {
    [Symbol.asyncIterator]: () => pages(),
    async first() {
      const answer = await fetchPage(start);
      return withMeta<Page>(answer, cursorsOf(answer, raw));
    },
    async all() {
      const out: Item[] = [];
      for await (const item of items()) out.push(item);
      return out;
    },
    items: () => items(),
  };
}

/** The unified methods of one resource, whatever the transport. */
export interface UnifiedResourceMethods {
  list(query: ListQuery): PagedList<unknown, unknown>;
  get(id: string, query: UnifiedRecordQuery): Promise<unknown>;
  create(query: UnifiedRecordQuery, body: unknown, options?: { idempotencyKey?: string | false }): Promise<unknown>;
  update(id: string, query: UnifiedRecordQuery, body: unknown, options?: { idempotencyKey?: string | false }): Promise<unknown>;
  delete(id: string, query: UnifiedRecordQuery, options?: { idempotencyKey?: string | false }): Promise<unknown>;
  batch(query: BatchQuery, items: unknown, options?: BatchOptions): Promise<unknown>;
}

/**
 * The unified methods of `model/resource` over a transport (list, get, create, update, delete, and the batch write): one implementation for every resource (the
 * {@link Unicrm} interface exposes the ones the unified model defines for each). Every answer that is an object
 * carries its {@link ResponseMeta} (`responseMeta(result)`).
 */
export function unifiedResource(send: Transport, model: string, resource: string): UnifiedResourceMethods {
  const base = { kind: 'unified' as const, model, resource };
  const resolved = async (answer: Promise<Answer>) => withMeta<unknown>(await answer);
  const keyOf = (options?: { idempotencyKey?: string | false }) => (options?.idempotencyKey === undefined ? {} : { idempotencyKey: options.idempotencyKey });
  return {
    list(query) {
      const { next_cursor: start, ...rest } = query;
      return pagedList(
        (cursor) => send({ ...base, method: 'list', query: cursor === undefined ? rest : { ...rest, next_cursor: cursor } }),
        query.truto_response_format === 'raw',
        `GET /unified/${model}/${resource}`,
        start,
      );
    },
    get: async (id, query) => resolved(send({ ...base, method: 'get', id: checkPathSegment('id', id), query })),
    create: async (query, body, options) => resolved(send({ ...base, method: 'create', query, body, ...keyOf(options) })),
    update: async (id, query, body, options) => resolved(send({ ...base, method: 'update', id: checkPathSegment('id', id), query, body, ...keyOf(options) })),
    delete: async (id, query, options) => resolved(send({ ...base, method: 'delete', id: checkPathSegment('id', id), query, ...keyOf(options) })),
    batch: async (query, items, options) =>
      resolved(send({ kind: 'batch', model, resource, query, body: { items }, ...keyOf(options), ...(options?.minimal === true && { minimal: true }) })),
  };
}

/**
 * `unicrm.proxy` over a transport: checks the path segments (400 before any call), sends, and answers the body with
 * its {@link ResponseMeta}.
 */
export function proxyMethod(send: Transport): (request: ProxyRequest) => Promise<unknown> {
  return async (request) => {
    const resource = checkPathSegment('resource', request?.resource);
    const id = request.id === undefined ? undefined : checkPathSegment('id', request.id);
    if (!['GET', 'POST', 'PATCH', 'DELETE'].includes(request.method)) {
      throw UnicrmError.validation([{ path: 'method', message: 'must be one of: GET, POST, PATCH, DELETE' }]);
    }
    if (id === undefined && (request.method === 'PATCH' || request.method === 'DELETE')) {
      throw UnicrmError.validation([{ path: 'id', message: `is required for ${request.method}` }]);
    }
    return withMeta<unknown>(
      await send({
        kind: 'proxy',
        method: request.method,
        resource,
        ...(id !== undefined && { id }),
        query: request.query ?? {},
        ...(request.body !== undefined && { body: request.body }),
        ...(request.idempotencyKey !== undefined && { idempotencyKey: request.idempotencyKey }),
      }),
    );
  };
}
