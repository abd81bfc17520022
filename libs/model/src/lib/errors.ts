import { STATUS_CODES } from 'node:http';
import { z } from 'zod';

/** One failed validation rule: the dotted path of the offending input and what is wrong with it. */
export const ValidationFailureSchema = z.object({ path: z.string(), message: z.string() });
export type ValidationFailure = z.infer<typeof ValidationFailureSchema>;

/** `truto_error_insight` entries (truto-contract.md §3.2): each `{ description, value? }`. */
export const ErrorInsightSchema = z.record(z.string(), z.object({ description: z.string(), value: z.unknown().optional() }));
export type ErrorInsight = z.infer<typeof ErrorInsightSchema>;

/**
 * The error body of every failure (DESIGN.md §3; truto-contract.md §3.1–3.2):
 * `{ statusCode, error, message }`, plus `details.failures` for validation, and for errors from
 * the provider `truto_is_remote_error`, `raw_response` and `truto_error_insight`.
 */
export const ErrorBodySchema = z
  .object({
    statusCode: z.number().int(),
    error: z.string().describe('The HTTP reason phrase of statusCode'),
    message: z.string(),
    details: z.object({ failures: z.array(ValidationFailureSchema) }).optional(),
    truto_is_remote_error: z.boolean().optional(),
    raw_response: z.unknown().optional(),
    truto_error_insight: ErrorInsightSchema.optional(),
  })
  .meta({ id: 'Error' });
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** Extra parts of an error body beyond `{ statusCode, error, message }`. */
export type ErrorExtras = Omit<ErrorBody, 'statusCode' | 'error' | 'message'>;

/**
 * The one error type of unicrm. Every failure that reaches a caller is a UnicrmError; the API
 * renders `body` with `statusCode` and `headers`, the SDK throws it as is. `message` never holds a
 * credential or a stack trace.
 */
export class UnicrmError extends Error {
  /** HTTP status of the answer. */
  readonly statusCode: number;
  /** The error body, exactly as the API sends it. */
  readonly body: ErrorBody;
  /** Headers to send with the answer (forwarded `Retry-After`, rate-limit headers). */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * True when a write may have been carried out by the provider although no usable answer came back
   * (a timeout or a broken connection after the request was sent, an unusable 2xx). Not part of the body:
   * idempotent retries use it to look for the result before writing again.
   */
  requestMayHaveArrived = false;

  constructor(statusCode: number, message: string, extras: ErrorExtras = {}, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'UnicrmError';
    this.statusCode = statusCode;
    this.headers = headers;
    this.body = { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message, ...extras };
  }

  /** True when the failure was answered by the remote provider (`truto_is_remote_error`). */
  get isRemote(): boolean {
    return this.body.truto_is_remote_error === true;
  }

  /**
   * 400 with `details.failures` and the message `<what>: <path> <message>; ...` (`Invalid query`, `Invalid body`).
   */
  static invalid(what: string, failures: ValidationFailure[]): UnicrmError {
    return UnicrmError.validation(failures, `${what}: ${failures.map((f) => `${f.path} ${f.message}`).join('; ')}`);
  }

  /** 400 with `details.failures`; `message` joins the failures when not given. */
  static validation(failures: ValidationFailure[], message?: string): UnicrmError {
    const text = message ?? failures.map((f) => (f.path ? `${f.path}: ${f.message}` : f.message)).join('; ');
    return new UnicrmError(400, text, { details: { failures } });
  }

  static badRequest(message: string): UnicrmError {
    return new UnicrmError(400, message);
  }

  static unauthorized(message = 'Missing or invalid API token. Send Authorization: Bearer <token>.'): UnicrmError {
    return new UnicrmError(401, message);
  }

  static notFound(message: string): UnicrmError {
    return new UnicrmError(404, message);
  }
}

/** Type guard that also works across module copies (checks the shape, not only the prototype). */
export function isUnicrmError(value: unknown): value is UnicrmError {
  return (
    value instanceof UnicrmError ||
    (value instanceof Error && value.name === 'UnicrmError' && typeof (value as UnicrmError).statusCode === 'number')
  );
}

/**
 * Turns zod issues into `details.failures`, with dotted paths prefixed by `root`
 * (`body.name`, `query.truto_response_format`).
 */
export function zodFailures(error: z.ZodError, root?: string): ValidationFailure[] {
  return error.issues.flatMap((issue) => {
    const parts = [root, ...issue.path.map(String)].filter((p): p is string => Boolean(p));
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: [...parts, key].join('.'), message: 'unknown field' }));
    }
    return [{ path: parts.join('.'), message: issue.message }];
  });
}

/**
 * The first string `code` on an error or along its `cause` chain (Node's `ECONNREFUSED`, undici's
 * `UND_ERR_*`, which fetch and undici wrap in causes), at most five levels deep.
 * @returns the code, or undefined when there is none
 */
export function errorCodeOf(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
