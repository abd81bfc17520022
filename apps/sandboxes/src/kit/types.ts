/**
 * Shapes every provider sandbox shares: fault rules and the request log (docs/sandboxes.md).
 */

/** A JSON object as answers are built: plain data, serialised with `JSON.stringify`. */
export type JsonObject = { [key: string]: unknown };

/**
 * A fault to inject (a sandbox extension, never a provider's behaviour; docs/sandboxes.md "Faults").
 * Every given effect applies, in this order: `latencyMs`, then `reset` | `hang` | `status` | `body`.
 */
export interface FaultRule {
  /** HTTP method to match (case-insensitive); any when absent. */
  method?: string;
  /** Substring of, or RegExp source matched against, the request path (without query); any when absent. */
  path?: string;
  /** How many matching requests the rule affects; unlimited when absent. Ignored for the header form. */
  times?: number;
  /** Delay before answering, in milliseconds (at most 600 000). Alone, the request is then handled normally. */
  latencyMs?: number;
  /** Answer this status (200-599) with the provider's own error body for it, without touching state. */
  status?: number;
  /** Seconds; sets `Retry-After` on a status fault. */
  retryAfter?: number;
  /**
   * With the provider's validation status only (Pipeliner: 422): answer the provider's validation error naming this
   * field as missing, as an account whose administrator made a field required would.
   */
  missingField?: string;
  /**
   * Corrupt the body. Without `status` the request is handled for real (state changes happen) and its real
   * answer is corrupted; with `status` that status is answered with the corrupted body.
   */
  body?: 'malformed' | 'truncated' | 'empty' | 'html';
  /** Destroy the socket without an answer. */
  reset?: boolean;
  /** Never answer (until the sandbox is reset or closed). */
  hang?: boolean;
}

/** One request as received by a sandbox. */
export interface RecordedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  /** Raw query string without '?'. */
  query: string;
  headers: Record<string, string | string[] | undefined>;
  /** Raw body text ('' when none). */
  body: string;
}
