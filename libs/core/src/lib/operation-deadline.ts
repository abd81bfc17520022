import { UnicrmError } from '@unicrm/model';

/** The deadline of one operation: its signal, and `clear` to call when the operation ends. */
export interface OperationDeadline {
  signal: AbortSignal;
  clear(): void;
}

/**
 * The deadline of one unified or proxy operation (issue 12): a signal that aborts, with a 504 as its reason,
 * `timeoutMs` after it is made, or when `outer` (the caller's signal) aborts. Every provider call of the operation (a
 * retry's lookup, the write, the reads that complete its answer) and its wait for a bulkhead slot run within it.
 */
export function operationDeadline(timeoutMs: number, outer?: AbortSignal): OperationDeadline {
  const controller = new AbortController();
  const timer = setTimeout(
    () =>
      controller.abort(
        new UnicrmError(
          504,
          `The operation did not finish within ${timeoutMs} ms (UNICRM_OPERATION_TIMEOUT_MS): the provider answered too slowly, or this account's earlier requests held every slot.`,
          { truto_is_remote_error: true, raw_response: null, truto_error_insight: { remote_error: { description: 'The provider did not answer in time.' } } },
        ),
      ),
    timeoutMs,
  );
  const onOuterAbort = () => controller.abort(outer?.reason);
  if (outer?.aborted) onOuterAbort();
  else outer?.addEventListener('abort', onOuterAbort, { once: true });
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onOuterAbort);
    },
  };
}
