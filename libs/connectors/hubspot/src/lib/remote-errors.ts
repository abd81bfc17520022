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

/**
 * Headers of HubSpot's answer forwarded to the caller on an error (docs/integrations.md, HubSpot "Errors"):
 * `Retry-After`, HubSpot's rate-limit headers (`X-HubSpot-RateLimit-Max`, `-Remaining`, `-Interval-Milliseconds`,
 * `-Daily`, `-Daily-Remaining`, the legacy `-Secondly`, `-Secondly-Remaining`) and `X-HubSpot-Correlation-Id` (what
 * HubSpot's support asks for); nothing else.
 */
const FORWARDED_HEADER = /^(retry-after|x-hubspot-ratelimit-[a-z-]+|x-hubspot-correlation-id)$/;

const SOURCE = { provider: 'HubSpot', forwarded: FORWARDED_HEADER };

export { parseRemoteBody };

/** The headers of `response` that are forwarded (`Retry-After`, HubSpot's rate-limit headers, its correlation id). */
export function forwardedHeaders(response: Pick<HttpResponse, 'headers'>): Record<string, string> {
  return forwardedHeadersOf(response, FORWARDED_HEADER);
}

/** HubSpot's validation details (`errors[]`: `{ message, code?, in?, context?, subCategory? }`), as they came. */
function errorDetails(body: unknown): unknown[] | undefined {
  return isJsonObject(body) && Array.isArray(body.errors) && body.errors.length > 0 ? body.errors : undefined;
}

/**
 * Turns a non-2xx answer of HubSpot into unicrm's remote error: status mirrored, `message` HubSpot's `message`,
 * `truto_is_remote_error`, `raw_response` (HubSpot's body: `status`, `message`, `correlationId`, `category`,
 * `subCategory`, `errors[]`, `context`, `links`; the text of a non-JSON answer), and `truto_error_insight`:
 * `remote_error` (with HubSpot's `category` and `correlationId` as its value), `validation_error` on a 400 or a
 * `VALIDATION_ERROR` category (its value: HubSpot's `errors[]`), `missing_scope` on a 403 (its value: the
 * `context.requiredGranularScopes`/`missingScopes` HubSpot names), `rate_limit_error` on a 429 (its value: HubSpot's
 * `policyName`), and the forwarded headers (rate limits, `Retry-After`, correlation id).
 */
export function remoteError(response: HttpResponse): UnicrmError {
  const body = parseRemoteBody(response.bodyText);
  const object = isJsonObject(body) ? body : {};
  const insight: ErrorInsight = {};
  const category = typeof object.category === 'string' ? object.category : undefined;
  const correlationId = typeof object.correlationId === 'string' ? object.correlationId : undefined;
  if (response.status === 400 || category === 'VALIDATION_ERROR') {
    const details = errorDetails(body);
    insight.validation_error = {
      description: 'HubSpot refused the request as invalid; its message (and errors[], when given) says which field.',
      ...(details && { value: details }),
    };
  }
  if (response.status === 403) {
    const context = isJsonObject(object.context) ? object.context : {};
    const scopes = context.requiredGranularScopes ?? context.missingScopes ?? context.requiredScopes;
    insight.missing_scope = {
      description:
        "HubSpot refused the request: the token lacks a scope (deal stage writes need crm.schemas.deals.write, ticket " +
        "stage writes tickets; reads e.g. crm.schemas.deals.read) or the portal's plan does not allow it.",
      ...(scopes !== undefined && { value: scopes }),
    };
  }
  if (response.status === 429) {
    insight.rate_limit_error = {
      description: 'HubSpot rate-limited the request (its burst window or daily limit); see the X-HubSpot-RateLimit-* headers.',
      ...(typeof object.policyName === 'string' && { value: object.policyName }),
    };
  }
  const error = remoteErrorOf(SOURCE, response, body, remoteMessageAt(body, 'message'), insight);
  if (category !== undefined || correlationId !== undefined) {
    const remote = error.body.truto_error_insight?.remote_error;
    if (remote) remote.value = { ...(category !== undefined && { category }), ...(correlationId !== undefined && { correlationId }) };
  }
  return error;
}

/** A 2xx answer that cannot be used (not JSON, no record): 502, still marked as remote; the work may have been done. */
export function unusableAnswer(response: HttpResponse, problem: string): UnicrmError {
  return unusableRemoteAnswer(SOURCE, response, problem);
}
