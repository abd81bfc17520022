import { errorCodeOf, forbiddenAddress, type HttpRequest, type HttpResponse, type HttpTransport, isUnicrmError, UnicrmError, type UnicrmConfig } from '@unicrm/model';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, buildConnector, Dispatcher } from 'undici';

/** The code of a connection refused by the outbound policy after DNS (the name resolved to a forbidden address). */
const OUTBOUND_POLICY = 'UNICRM_OUTBOUND_POLICY';

/** A `dns.lookup`-compatible resolver (tests pass one that answers fixed addresses). */
export type Lookup = (
  hostname: string,
  options: { all?: boolean; family?: number; hints?: number },
  callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
) => void;

/** An error saying why an address may not be reached (the outbound policy). */
function policyError(host: string, reason: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${host}: ${reason}`);
  error.code = OUTBOUND_POLICY;
  return error;
}

/**
 * A resolver that applies the outbound policy to what a name resolves to ({@link forbiddenAddress}): a link-local or
 * cloud metadata address never, with `http:` nothing but loopback. Every address of the answer is checked (a name that
 * resolves to an allowed and a forbidden one is refused), so a DNS name cannot lead a webhook or a provider call to an
 * address the URL check (which sees only the name) would have refused.
 */
function guardedLookup(resolve: Lookup, protocol: string): Lookup {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      const list = (Array.isArray(addresses) ? addresses : [{ address: addresses, family: isIP(addresses) }]) as LookupAddress[];
      for (const { address } of list) {
        const reason = forbiddenAddress(address, protocol);
        if (reason) return callback(policyError(hostname, reason), []);
      }
      if (options.all) return callback(null, list);
      const first = list[0];
      if (!first) return callback(policyError(hostname, 'resolved to no address'), []);
      callback(null, first.address, first.family);
    });
  };
}

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
  OUTBOUND_POLICY,
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

/** What one call learns from undici about itself: whether its request was handed to a connection. */
interface CallState {
  sent: boolean;
}
/** Dispatch option carrying a call's {@link CallState} (undici passes unknown options through untouched). */
const CALL_STATE = Symbol('unicrm.callState');
const noop = () => undefined;
/** The abort reason of a call's own deadline. */
const DEADLINE = new Error('remote call deadline');

/**
 * The agent, with one thing more: it notes when a request is handed to a connection. undici calls a handler's
 * `onConnect` right before it writes the request to the socket (client-h1's `writeH1`), never while the request waits
 * in the pool's queue or for a connection; so a call aborted before then cannot have reached the provider.
 */
class SendTrackingDispatcher extends Dispatcher {
  constructor(private readonly agent: Agent) {
    super();
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const call = (options as { [CALL_STATE]?: CallState })[CALL_STATE];
    const onConnect = handler.onConnect;
    if (call && onConnect) {
      // The handler is undici's own (its `request` API's), made for this one call: patching it costs no extra layer.
      // undici passes a context object after `abort` that its types omit: every argument is handed on.
      const patched = (...args: unknown[]): void => {
        call.sent = true;
        Reflect.apply(onConnect, handler, args);
      };
      handler.onConnect = patched as typeof onConnect;
    }
    return this.agent.dispatch(options, handler);
  }

  override close(): Promise<void> {
    return this.agent.close();
  }

  override destroy(): Promise<void> {
    return this.agent.destroy();
  }
}

/**
 * {@link HttpTransport} on undici: one `Agent`, which keeps a keep-alive connection pool per origin
 * (per service URL). It never retries (undici's plain Agent does not), so a POST is sent at most once (DESIGN.md §3).
 *
 * Deadline (issue 12): each call as a whole, from the moment it is made (waiting for a pooled connection included)
 * through connecting, sending and reading the answer to its last byte, lasts at most `remoteTimeoutMs`: one timer
 * per call aborts it. undici's own bounds stay as a second line: connect (`connectTimeoutMs`), headers and idle time
 * between body chunks (`remoteTimeoutMs` each). The caller's `signal` (the operation's deadline) aborts it too.
 *
 * Failures: no connection or a broken answer -> UnicrmError 502; a timeout -> 504; an abort by the caller's
 * `signal` -> its reason when that is a UnicrmError (a copy), else 504 for a `TimeoutError`, 502 otherwise.
 * `requestMayHaveArrived` is false whenever the request was never handed to a connection, else true unless the
 * failure code proves nothing was sent (connection refused, DNS, TLS, connect timeout).
 */
export class UndiciTransport implements HttpTransport {
  private readonly dispatcher: SendTrackingDispatcher;

  /**
   * @param options.lookup the resolver (default `dns.lookup`); its answers pass the outbound policy before connecting
   */
  constructor(
    private readonly config: Pick<UnicrmConfig, 'remoteTimeoutMs' | 'connectTimeoutMs'>,
    options: { lookup?: Lookup } = {},
  ) {
    const resolve = options.lookup ?? (dnsLookup as unknown as Lookup);
    const connectors = {
      'http:': buildConnector({ timeout: config.connectTimeoutMs, lookup: guardedLookup(resolve, 'http:') } as buildConnector.BuildOptions),
      'https:': buildConnector({ timeout: config.connectTimeoutMs, lookup: guardedLookup(resolve, 'https:') } as buildConnector.BuildOptions),
    };
    const agent = new Agent({
      keepAliveTimeout: 10_000,
      keepAliveMaxTimeout: 60_000,
      connections: 128,
      pipelining: 1,
      headersTimeout: config.remoteTimeoutMs,
      bodyTimeout: config.remoteTimeoutMs,
      // The outbound policy again on every connection, after DNS (the URL check sees only the name); an IP literal is
      // not resolved, so it is judged here as it is.
      connect: (opts, callback) => {
        const reason = isIP(opts.hostname.replace(/^\[|\]$/g, '')) ? forbiddenAddress(opts.hostname, opts.protocol) : undefined;
        if (reason) {
          callback(policyError(opts.hostname, reason), null);
          return;
        }
        (opts.protocol === 'https:' ? connectors['https:'] : connectors['http:'])(opts, callback);
      },
      maxResponseSize: MAX_REMOTE_RESPONSE_BYTES,
    });
    this.dispatcher = new SendTrackingDispatcher(agent);
  }

  async request(request: HttpRequest): Promise<HttpResponse> {
    const url = new URL(request.url);
    const call: CallState = { sent: false };
    const controller = new AbortController();
    // undici acts on an abort only once the request has a connection (a queued or connecting one stays where it is,
    // and is dropped unsent when its turn comes), so the call itself ends at the abort, whatever undici is doing.
    let sentAtAbort = false;
    const aborted = new Promise<never>((_resolve, reject) => {
      controller.signal.addEventListener(
        'abort',
        () => {
          sentAtAbort = call.sent;
          reject(controller.signal.reason);
        },
        { once: true },
      );
    });
    aborted.catch(noop);
    const deadline = setTimeout(() => controller.abort(DEADLINE), this.config.remoteTimeoutMs);
    const caller = request.signal;
    const onCallerAbort = () => controller.abort(caller?.reason);
    if (caller?.aborted) onCallerAbort();
    else caller?.addEventListener('abort', onCallerAbort, { once: true });
    let stage = 'connect';
    try {
      const pending = this.dispatcher.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: request.method,
        headers: request.headers,
        body: request.body,
        signal: controller.signal,
        [CALL_STATE]: call,
      } as Dispatcher.RequestOptions);
      // When the abort wins, undici settles this later: its answer (if any) is thrown away.
      pending.then((response) => controller.signal.aborted && response.body.destroy(), noop);
      const response = await Promise.race([pending, aborted]);
      stage = 'body';
      const bodyText = await Promise.race([response.body.text(), aborted]);
      return { status: response.statusCode, headers: response.headers as HttpResponse['headers'], bodyText };
    } catch (error) {
      if (controller.signal.aborted) {
        const failure = this.aborted(url.origin, controller.signal.reason);
        failure.requestMayHaveArrived = sentAtAbort;
        throw failure;
      }
      const failure = this.failed(url.origin, error, stage);
      failure.requestMayHaveArrived = call.sent && (stage === 'body' || !BEFORE_SENDING.has(errorCode(error)));
      throw failure;
    } finally {
      clearTimeout(deadline);
      caller?.removeEventListener('abort', onCallerAbort);
    }
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }

  /** The error of a call aborted by its own deadline or by the caller's signal. */
  private aborted(origin: string, reason: unknown): UnicrmError {
    if (reason === DEADLINE) {
      return new UnicrmError(
        504,
        `${origin} did not answer within ${this.config.remoteTimeoutMs} ms (the call's deadline, from waiting for a connection to the answer's last byte).`,
        remoteInsight('The provider did not answer in time.'),
      );
    }
    if (isUnicrmError(reason)) {
      const { statusCode: _s, error: _e, message, ...extras } = reason.body;
      return new UnicrmError(reason.statusCode, message, extras, { ...reason.headers });
    }
    if ((reason as Error | undefined)?.name === 'TimeoutError') {
      return new UnicrmError(504, `The call to ${origin} was stopped: its caller's deadline passed.`, remoteInsight('The provider did not answer in time.'));
    }
    return new UnicrmError(502, `The call to ${origin} was aborted by its caller.`, remoteInsight('The call to the provider was aborted.'));
  }

  /** The error of a call that failed on its own (no connection, undici's timeouts, a broken answer). */
  private failed(origin: string, error: unknown, stage: string): UnicrmError {
    const code = errorCode(error);
    if (code === OUTBOUND_POLICY) {
      return new UnicrmError(502, `${origin} may not be reached (outbound policy): ${(error as Error).message}.`, remoteInsight('The address is not allowed by the outbound policy.'));
    }
    if (TIMEOUT_CODES.has(code)) {
      return new UnicrmError(
        504,
        `${origin} did not answer within ${code === 'UND_ERR_CONNECT_TIMEOUT' ? this.config.connectTimeoutMs : this.config.remoteTimeoutMs} ms (${code}).`,
        remoteInsight('The provider did not answer in time.'),
      );
    }
    const what =
      stage === 'body'
        ? `The answer from ${origin} broke off`
        : BEFORE_SENDING.has(code)
          ? `Could not reach ${origin}`
          : `The connection to ${origin} broke before an answer came`;
    return new UnicrmError(502, `${what} (${code}).`, remoteInsight('The provider could not be reached or its answer was incomplete.'));
  }
}
