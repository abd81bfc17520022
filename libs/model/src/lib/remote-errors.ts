import type { ErrorInsight } from './errors';
import { UnicrmError } from './errors';
import type { HttpResponse } from './ports';
import { isJsonObject } from './remote-data';

/** Parses a provider's body as JSON when it is JSON, else returns the text (`raw_response` of DESIGN.md §3). */
export function parseRemoteBody(text: string): unknown {
  if (text.trim() === '') return '';
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The headers of `response` whose lower-case name matches `forwarded` (a connector's list of headers it forwards). */
export function forwardedHeadersOf(response: Pick<HttpResponse, 'headers'>, forwarded: RegExp): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    const key = name.toLowerCase();
    if (forwarded.test(key)) out[key] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** What {@link remoteErrorOf} and {@link unusableRemoteAnswer} need of a connector. */
export interface RemoteErrorSource {
  /** The provider's name in messages (`Pipeliner`, `Pipedrive`). */
  provider: string;
  /** The headers forwarded to the caller on an error (lower-case names). */
  forwarded: RegExp;
}

/**
 * A provider's non-2xx answer as unicrm's remote error (DESIGN.md §3): the status mirrored (502 for one outside
 * 400–599), `message` (the provider's, else "<provider> answered HTTP <status> without an error message"),
 * `truto_is_remote_error`, `raw_response` (`body`), `truto_error_insight` (`remote_error` and what the connector adds)
 * and the forwarded headers.
 * @param body the parsed body ({@link parseRemoteBody})
 * @param remoteMessage the provider's message read from `body` (empty when none)
 * @param insight the connector's insight entries beside `remote_error`
 */
export function remoteErrorOf(source: RemoteErrorSource, response: HttpResponse, body: unknown, remoteMessage: string, insight: ErrorInsight = {}): UnicrmError {
  const status = response.status >= 400 && response.status <= 599 ? response.status : 502;
  const message = remoteMessage || `${source.provider} answered HTTP ${response.status} without an error message`;
  return new UnicrmError(
    status,
    message,
    {
      truto_is_remote_error: true,
      raw_response: body,
      truto_error_insight: { remote_error: { description: `The error was returned by ${source.provider}; see raw_response for its body.` }, ...insight },
    },
    forwardedHeadersOf(response, source.forwarded),
  );
}

/** A 2xx answer that cannot be used (not JSON, no record): 502, still marked as remote; the work may have been done. */
export function unusableRemoteAnswer(source: RemoteErrorSource, response: HttpResponse, problem: string): UnicrmError {
  const error = new UnicrmError(
    502,
    `${source.provider} answered HTTP ${response.status} but ${problem}`,
    {
      truto_is_remote_error: true,
      raw_response: parseRemoteBody(response.bodyText),
      truto_error_insight: { remote_error: { description: `${source.provider} answered something unicrm cannot use.` } },
    },
    forwardedHeadersOf(response, source.forwarded),
  );
  error.requestMayHaveArrived = true;
  return error;
}

/** The message of a provider's JSON error body at `key` (trimmed), or '' when there is none. */
export function remoteMessageAt(body: unknown, key: string): string {
  return isJsonObject(body) && typeof body[key] === 'string' ? (body[key] as string).trim() : '';
}
