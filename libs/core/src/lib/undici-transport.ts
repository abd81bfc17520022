import { errorCodeOf, type HttpRequest, type HttpResponse, type HttpTransport, UnicrmError, type UnicrmConfig } from '@unicrm/model';
import { Agent } from 'undici';

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);
/** Failures that happen before a byte of the request is sent: the provider cannot have acted on it. */
const BEFORE_SENDING = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
]);
/** Largest provider answer read, in bytes; a larger one is a 502. */
export const MAX_REMOTE_RESPONSE_BYTES = 32 * 1024 * 1024;

function errorCode(error: unknown): string {
  return errorCodeOf(error) ?? (error as Error)?.name ?? 'unknown error';
}

const remoteInsight = (description: string) => ({
  truto_is_remote_error: true,
  // No answer (or none complete) came back: there is no provider body to show.
  raw_response: null,
  truto_error_insight: { remote_error: { description } },
});

/**
 * {@link HttpTransport} on undici: one `Agent`, which keeps a keep-alive connection pool per origin
 * (per service URL). Timeouts: connect, headers and body each bounded by the config. It never
 * retries (undici's plain Agent does not), so a POST is sent at most once (DESIGN.md §3).
 * Failures: no connection or a broken answer -> UnicrmError 502; a timeout -> 504.
 */
export class UndiciTransport implements HttpTransport {
  private readonly agent: Agent;

  constructor(private readonly config: Pick<UnicrmConfig, 'remoteTimeoutMs' | 'connectTimeoutMs'>) {
    this.agent = new Agent({
      keepAliveTimeout: 10_000,
      keepAliveMaxTimeout: 60_000,
      connections: 128,
      pipelining: 1,
      headersTimeout: config.remoteTimeoutMs,
      bodyTimeout: config.remoteTimeoutMs,
      connect: { timeout: config.connectTimeoutMs },
      maxResponseSize: MAX_REMOTE_RESPONSE_BYTES,
    });
  }

  async request(request: HttpRequest): Promise<HttpResponse> {
    const url = new URL(request.url);
    let stage = 'connect';
    try {
      const response = await this.agent.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: request.method,
        headers: request.headers,
        body: request.body,
        signal: request.signal,
      });
      stage = 'body';
      const bodyText = await response.body.text();
      return { status: response.statusCode, headers: response.headers as HttpResponse['headers'], bodyText };
    } catch (error) {
      const code = errorCode(error);
      let failure: UnicrmError;
      if (TIMEOUT_CODES.has(code)) {
        failure = new UnicrmError(
          504,
          `${url.origin} did not answer within ${code === 'UND_ERR_CONNECT_TIMEOUT' ? this.config.connectTimeoutMs : this.config.remoteTimeoutMs} ms (${code}).`,
          remoteInsight('The provider did not answer in time.'),
        );
      } else {
        const what =
          stage === 'body'
            ? `The answer from ${url.origin} broke off`
            : BEFORE_SENDING.has(code)
              ? `Could not reach ${url.origin}`
              : `The connection to ${url.origin} broke before an answer came`;
        failure = new UnicrmError(502, `${what} (${code}).`, remoteInsight('The provider could not be reached or its answer was incomplete.'));
      }
      failure.requestMayHaveArrived = stage === 'body' || !BEFORE_SENDING.has(code);
      throw failure;
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
