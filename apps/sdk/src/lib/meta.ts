/**
 * What the SDK knows of an answer besides its body (both transports): read it with {@link responseMeta}. Every
 * `crm.*` answer and every `proxy` answer that is an object carries it (a create, update and delete result, a record,
 * a list page); `accounts.*` answers do not.
 */
export interface ResponseMeta {
  /**
   * The answer's HTTP status (201 for a create, 200 for the other unified methods, the provider's for the proxy; a
   * replayed answer keeps the status of the first one).
   */
  statusCode: number;
  /**
   * `true` when the server did not run the write but answered with the stored answer of an earlier request with
   * the same `Idempotency-Key` (the API's `Idempotent-Replayed: true` header; the embedded core sets the same header
   * on its answer). That earlier request made the change (created the stage); this call changed nothing. With the
   * remote client's own retries, the earlier request can be this call's first attempt (its answer lost to a
   * timeout): see `attempts`. Always `false` for reads.
   */
  replayed: boolean;
  /** The `Idempotency-Key` the write carried (the remote client's own unless given one), or undefined when it had none. */
  idempotencyKey?: string;
  /** How many attempts the call took: the remote client's retries count; the embedded client makes one. */
  attempts: number;
  /**
   * The answer's `Preference-Applied` header (RFC 7240), when it had one: `return=minimal` on a batch answered with
   * ids only (`crm.stages.batch(..., { minimal: true })`). The embedded client sets it as the API does.
   */
  preferenceApplied?: string;
  /**
   * A list page's cursors (set on list pages only): the envelope's `next_cursor` / `prev_cursor`, or in the `raw`
   * format, whose body is the provider's page, the API's `Unicrm-Next-Cursor` / `Unicrm-Prev-Cursor` headers.
   * `null` when there is no such page. Pass one back as the query's `next_cursor`.
   */
  nextCursor?: string | null;
  prevCursor?: string | null;
}

/** The header that marks a replayed answer, in the API's answers and the embedded core's (lower-case). */
export const REPLAYED_HEADER = 'idempotent-replayed';

/** The header that says which `Prefer` the server applied (RFC 7240), lower-case. */
export const PREFERENCE_APPLIED_HEADER = 'preference-applied';

/** Shared by every copy of the SDK in a process (as `isUnicrmError` is), so a body from one copy is read by another. */
const META = Symbol.for('unicrm.sdk.responseMeta');

/**
 * Attaches `meta` to a result as a non-enumerable, read-only symbol property: invisible to
 * `JSON.stringify`, `Object.keys`, spreading and deep-equality checks, so the body stays exactly the API's.
 * @returns `result`, for chaining
 */
export function attachResponseMeta<T>(result: T, meta: ResponseMeta): T {
  if (typeof result === 'object' && result !== null && Object.isExtensible(result)) {
    Object.defineProperty(result, META, { value: Object.freeze({ ...meta }), enumerable: false, writable: false, configurable: true });
  }
  return result;
}

/**
 * The {@link ResponseMeta} of a value that a `crm.*` method or `proxy` resolved to (or a list yielded), whichever
 * transport made it: `responseMeta(stage)?.replayed` tells a stage created by this call from one an earlier request
 * with the same `Idempotency-Key` created (as `stages import` does to count replayed rows apart);
 * `responseMeta(page)?.nextCursor` is a `raw` list page's next cursor.
 * @returns the metadata, or undefined for any other value (an `accounts.*` answer, a string or null; also for a copy
 *   of the result: spreading or `JSON.parse(JSON.stringify(...))` drops it)
 */
export function responseMeta(result: unknown): ResponseMeta | undefined {
  if (typeof result !== 'object' || result === null) return undefined;
  return (result as { [META]?: ResponseMeta })[META];
}
