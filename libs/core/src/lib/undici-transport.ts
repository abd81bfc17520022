import { type HttpRequest, type HttpResponse, type HttpTransport, UnicrmError, type UnicrmConfig } from '@unicrm/model';
import { Agent } from 'undici';

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);
/** Largest provider answer read, in bytes; a larger one is a 502. */
export const MAX_REMOTE_RESPONSE_BYTES = 32 * 1024 * 1024;

function errorCode(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; current && depth < 4; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return (error as Error)?.name ?? 'unknown error';
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
      if (TIMEOUT_CODES.has(code)) {
        throw new UnicrmError(
          504,
          `${url.origin} did not answer within ${code === 'UND_ERR_CONNECT_TIMEOUT' ? this.config.connectTimeoutMs : this.config.remoteTimeoutMs} ms (${code}).`,
          remoteInsight('The provider did not answer in time.'),
        );
      }
      const what = stage === 'connect' ? `Could not reach ${url.origin}` : `The answer from ${url.origin} broke off`;
      throw new UnicrmError(502, `${what} (${code}).`, remoteInsight('The provider could not be reached or its answer was incomplete.'));
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
