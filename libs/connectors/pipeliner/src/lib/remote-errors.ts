import {
  type ErrorInsight,
  forwardedHeadersOf,
  type HttpResponse,
  isJsonObject,
  parseRemoteBody,
  remoteErrorOf,
  remoteMessageAt,
  type UnicrmError,
  unusableRemoteAnswer,
} from '@unicrm/model';

/** Headers of Pipeliner's answer that are forwarded to the caller on an error (DESIGN.md §3); nothing else. */
const FORWARDED_HEADER = /^(retry-after|ratelimit-(limit|remaining|reset|policy)|x-ratelimit-[a-z-]+)$/;

const SOURCE = { provider: 'Pipeliner', forwarded: FORWARDED_HEADER };

export { parseRemoteBody };

/** The headers of `response` that DESIGN.md §3 forwards (`Retry-After`, rate-limit headers). */
export function forwardedHeaders(response: Pick<HttpResponse, 'headers'>): Record<string, string> {
  return forwardedHeadersOf(response, FORWARDED_HEADER);
}

/**
 * Names of fields Pipeliner reports as missing in a 422 ERROR_ENTITY_VALIDATION body
 * (pipeliner-api.md §4: `field_errors[].errors[]` with code 119 ERROR_PARAMETER_MISSING, or the
 * "Non-null field 'x' is null or empty." line).
 */
export function missingFields(body: unknown): string[] {
  if (!isJsonObject(body) || !Array.isArray(body.field_errors)) return [];
  const names: string[] = [];
  for (const fieldError of body.field_errors) {
    if (!isJsonObject(fieldError)) continue;
    const errors = Array.isArray(fieldError.errors) ? fieldError.errors.filter(isJsonObject) : [];
    const missing = errors.some(
      (e) => e.code === 119 || e.name === 'ERROR_PARAMETER_MISSING' || /null or empty/i.test(String(e.message ?? '')),
    );
    const name = fieldError.field_name ?? errors[0]?.field_name;
    if (missing && typeof name === 'string' && !names.includes(name)) names.push(name);
  }
  return names;
}

/**
 * Turns a non-2xx answer of Pipeliner into the remote error of DESIGN.md §3: status mirrored,
 * `message` from Pipeliner's body, `truto_is_remote_error`, `raw_response` (parsed JSON or text),
 * `truto_error_insight` (`remote_error`; `rate_limit_error` on 429; `missing_required_body_fields`
 * on a 422 naming missing fields) and the forwarded headers.
 */
export function remoteError(response: HttpResponse): UnicrmError {
  const body = parseRemoteBody(response.bodyText);
  const insight: ErrorInsight = {};
  if (response.status === 429) {
    insight.rate_limit_error = { description: 'Pipeliner rate-limited the request; retry after Retry-After seconds.' };
  }
  const missing = response.status === 422 ? missingFields(body) : [];
  if (missing.length > 0) {
    insight.missing_required_body_fields = {
      description: 'Pipeliner requires these fields; send them in the body (or in remote_data).',
      value: missing,
    };
  }
  return remoteErrorOf(SOURCE, response, body, remoteMessageAt(body, 'message'), insight);
}

/** A 2xx answer that cannot be used (not JSON, no entity): 502, still marked as remote. */
export function unusableAnswer(response: HttpResponse, problem: string): UnicrmError {
  return unusableRemoteAnswer(SOURCE, response, problem);
}
