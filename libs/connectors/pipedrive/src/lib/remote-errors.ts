import {
  type ErrorInsight,
  forwardedHeadersOf,
  type HttpResponse,
  parseRemoteBody,
  remoteErrorOf,
  remoteMessageAt,
  type UnicrmError,
  unusableRemoteAnswer,
} from '@unicrm/model';

/**
 * Headers of Pipedrive's answer forwarded to the caller (docs/pipedrive.md "Errors"): `Retry-After` and its rate-limit
 * headers (the burst window's `x-ratelimit-*`, the daily budget's `x-daily-*`); nothing else.
 */
const FORWARDED_HEADER = /^(retry-after|x-ratelimit-(limit|remaining|reset)|x-daily-[a-z-]+)$/;

const SOURCE = { provider: 'Pipedrive', forwarded: FORWARDED_HEADER };

export { parseRemoteBody };

/** The headers of `response` that are forwarded (`Retry-After`, Pipedrive's rate-limit headers). */
export function forwardedHeaders(response: Pick<HttpResponse, 'headers'>): Record<string, string> {
  return forwardedHeadersOf(response, FORWARDED_HEADER);
}

/**
 * Turns a non-2xx answer of Pipedrive into unicrm's remote error: status mirrored, `message` from Pipedrive's
 * `{ success: false, error, error_info }` body, `truto_is_remote_error`, `raw_response` (parsed JSON, or the text of a
 * non-JSON answer such as Cloudflare's HTML 403), `truto_error_insight` (`remote_error`; `validation_error` on 400,
 * `missing_scope` on 403, `rate_limit_error` on 429) and the forwarded rate-limit headers.
 */
export function remoteError(response: HttpResponse): UnicrmError {
  const body = parseRemoteBody(response.bodyText);
  const insight: ErrorInsight = {};
  if (response.status === 400) {
    insight.validation_error = { description: 'Pipedrive refused the request as invalid; its message says which field.' };
  }
  if (response.status === 403) {
    insight.missing_scope = {
      description:
        'Pipedrive refused the request: the OAuth token lacks the scope (stage and pipeline writes need `admin`; reads ' +
        '`deals:read`, `deals:full` or `admin`), the user lacks the permission, or a plan limit was reached.',
    };
  }
  if (response.status === 429) {
    insight.rate_limit_error = {
      description: "Pipedrive rate-limited the request (burst window or daily token budget); see the x-ratelimit-* and x-daily-* headers.",
    };
  }
  return remoteErrorOf(SOURCE, response, body, remoteMessageAt(body, 'error'), insight);
}

/** A 2xx answer that cannot be used (not JSON, no `data`): 502, still marked as remote; the work may have been done. */
export function unusableAnswer(response: HttpResponse, problem: string): UnicrmError {
  return unusableRemoteAnswer(SOURCE, response, problem);
}
