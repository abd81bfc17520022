import { AsyncLocalStorage } from 'node:async_hooks';

/** What is known about the request being served, for every log line written while serving it. */
export interface RequestContext {
  /** The request id (`x-request-id`). */
  requestId: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

/**
 * Runs `fn` with a request context, so that every log line written inside it (also by the core and the
 * connectors, across awaits) carries `req_id`. Front doors call this once per request.
 */
export function runWithRequestContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

/** The context of the request being served, if any. */
export function currentRequestContext(): RequestContext | undefined {
  return storage.getStore();
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** True for an incoming `x-request-id` worth echoing: 1–128 characters of `A-Za-z0-9._:-` (no spaces, no control characters). */
export function isValidRequestId(value: unknown): value is string {
  return typeof value === 'string' && REQUEST_ID.test(value);
}
