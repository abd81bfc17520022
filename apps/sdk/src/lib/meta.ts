/**
 * What the SDK knows of a create's answer besides its body (both transports): read it with {@link responseMeta}.
 */
export interface ResponseMeta {
  /** The answer's HTTP status (201 for a create; a replayed answer keeps the status of the first one). */
  statusCode: number;
  /**
   * `true` when the server did not run the create but answered with the stored answer of an earlier request with
   * the same `Idempotency-Key` (the API's `Idempotent-Replayed: true` header; the embedded core sets the same header
   * on its answer). That earlier request created the stage; this call created nothing. With the remote client's own
   * retries, the earlier request can be this call's first attempt (its answer lost to a timeout): see `attempts`.
   */
  replayed: boolean;
  /** The `Idempotency-Key` the create carried (the client's own unless given one), or undefined when it had none. */
  idempotencyKey?: string;
  /** How many attempts the call took: the remote client's retries count; the embedded client makes one. */
  attempts: number;
}

/** The header that marks a replayed answer, in the API's answers and the embedded core's (lower-case). */
export const REPLAYED_HEADER = 'idempotent-replayed';

/** Shared by every copy of the SDK in a process (as `isUnicrmError` is), so a body from one copy is read by another. */
const META = Symbol.for('unicrm.sdk.responseMeta');

/**
 * Attaches `meta` to a create's result as a non-enumerable, read-only symbol property: invisible to
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
 * The {@link ResponseMeta} of a value that `crm.stages.create` resolved to, whichever transport made it:
 * `responseMeta(stage)?.replayed` tells a stage created by this call from one an earlier request with the same
 * `Idempotency-Key` created (as `stages import` does to count replayed rows apart).
 * @returns the metadata, or undefined for any other value (also for a copy of the result: spreading or
 *   `JSON.parse(JSON.stringify(...))` drops it)
 */
export function responseMeta(result: unknown): ResponseMeta | undefined {
  if (typeof result !== 'object' || result === null) return undefined;
  return (result as { [META]?: ResponseMeta })[META];
}
