/*
 * Request ids (`x-request-id`). A request's id reaches the log lines written for it explicitly: front doors pass it
 * to the core (`CreateStageRequest.requestId`, the `requestId` parameters), the core to the connector
 * (`CallOptions.requestId`), and every log call sets `req_id`. (An AsyncLocalStorage did this before; on Node 20 it
 * costs every promise of the process an async hook: 6 % of the API's CPU per create, docs/benchmarks.md.)
 */

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** True for an incoming `x-request-id` worth echoing: 1–128 characters of `A-Za-z0-9._:-` (no spaces, no control characters). */
export function isValidRequestId(value: unknown): value is string {
  return typeof value === 'string' && REQUEST_ID.test(value);
}
