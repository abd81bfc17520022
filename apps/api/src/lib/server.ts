import { createServer, type RequestListener, type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { BODY_LIMIT_BYTES } from './middleware';

/** Bounds on a slow client (docs/security.md). */
export interface SlowClientBounds {
  /**
   * The request head (line and headers) must have arrived within this many ms of the request's first byte; a
   * connection that has sent nothing yet is held to it from its opening (Node's `headersTimeout`).
   */
  headersTimeoutMs: number;
  /** The whole request (head and body) must have arrived within this many ms of its first byte (`requestTimeout`). */
  requestTimeoutMs: number;
}

/** The documented bounds: the head within 15 s, the whole request within 60 s (then 408). */
export const SLOW_CLIENT_BOUNDS: SlowClientBounds = { headersTimeoutMs: 15_000, requestTimeoutMs: 60_000 };

/**
 * The HTTP server of the API. Requests Node rejects before the app sees them (a request head over
 * Node's 16 KiB limit, a malformed request line) still get an answer in the error shape of DESIGN.md §3.
 * A slow client is cut off with 408 and a closed connection once it passes `bounds`, counted from the request's
 * first byte: at most one check interval (1 s for the default bounds) after the bound. Node checks the bounds only
 * every `connectionsCheckingInterval`, 30 s by default, so before issue 12 they held at 43 s and 73 s.
 */
export function createHttpServer(app: RequestListener, bounds: SlowClientBounds = SLOW_CLIENT_BOUNDS): Server {
  const server = createServer(
    {
      // Hosts are not routed on, so a missing Host header is the app's to answer (in the error shape), not Node's bare 400.
      requireHostHeader: false,
      headersTimeout: bounds.headersTimeoutMs,
      requestTimeout: bounds.requestTimeoutMs,
      // How often Node looks for connections past those bounds, so how late a 408 may come: at most a second (and a
      // quarter of the head bound for short bounds). One pass over the open connections per interval.
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(bounds.headersTimeoutMs / 4))),
    },
    app,
  );
  // "Expect: 100-continue" with a body that is declared larger than 1 MiB: answer 413 at once instead of inviting the
  // client to send it (Node would send "100 Continue" first). Everything else gets its 100 and goes on as usual.
  server.on('checkContinue', (req, res) => {
    const declared = Number(req.headers['content-length']);
    if (!(declared > BODY_LIMIT_BYTES)) res.writeContinue();
    app(req, res);
  });
  server.on('checkExpectation', (_req, res) => {
    const body = JSON.stringify({ statusCode: 417, error: STATUS_CODES[417], message: 'Only "Expect: 100-continue" is supported.' });
    res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const message =
      status === 431
        ? 'The request head (URL and headers) is larger than 16 KiB; shorten the query string.'
        : status === 408
          ? 'The request did not arrive in time.'
          : 'The request could not be parsed as HTTP.';
    const body = JSON.stringify({ statusCode: status, error: STATUS_CODES[status], message });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  return server;
}
