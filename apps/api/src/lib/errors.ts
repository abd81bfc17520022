import { NOT_A_JSON_OBJECT } from '@unicrm/core';
import { isUnicrmError, UnicrmError } from '@unicrm/model';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { noteErrorMessage, RATE_LIMIT_HEADERS, requestIdOf, sendJsonText } from './front-door';

/** Errors whose message quotes the request body (JSON.parse's): answered as they are, but not logged. */
const QUOTES_THE_BODY = new WeakSet<UnicrmError>();

/** A byte count as people read it: `1 MiB`, `64 KiB`, else bytes. */
function bytesInWords(bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}

/** body-parser error types and the answers DESIGN.md §2 "Body" gives them. */
function bodyParserError(error: { type?: unknown; message?: unknown; body?: unknown; limit?: unknown }): UnicrmError | undefined {
  switch (error.type) {
    case 'entity.too.large':
      // The limit of the parser that refused it: 1 MiB for JSON bodies, 64 KiB for the connect page's forms.
      return new UnicrmError(413, `The body is larger than ${typeof error.limit === 'number' ? bytesInWords(error.limit) : '1 MiB'}.`);
    case 'parameters.too.many':
      return new UnicrmError(413, 'The form has too many fields.');
    case 'entity.parse.failed': {
      // Strict parsing refuses a top-level string, number, boolean or null before JSON.parse can say why.
      const first = String(error.body ?? '').trimStart()[0];
      if (first !== undefined && first !== '{' && first !== '[') return UnicrmError.badRequest(NOT_A_JSON_OBJECT);
      const invalid = UnicrmError.badRequest(`The body is not valid JSON: ${String(error.message)}`);
      QUOTES_THE_BODY.add(invalid);
      return invalid;
    }
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new UnicrmError(415, `Unsupported body encoding: ${String(error.message)}`);
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return UnicrmError.badRequest(`The body could not be read: ${String(error.message)}`);
    default:
      return undefined;
  }
}

/** Other client errors Express or body-parser raise (a bad gzip body, a path that is not valid percent-encoding). */
function clientError(error: { status?: unknown; statusCode?: unknown; expose?: unknown; message?: unknown }): UnicrmError | undefined {
  if (error instanceof URIError) return UnicrmError.badRequest('The URL path is not valid percent-encoding.');
  const status = typeof error.status === 'number' ? error.status : error.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new UnicrmError(status, 'The request could not be read; check its Content-Encoding and that the body matches it.');
  }
  return undefined;
}

/**
 * What any failure becomes in an answer (DESIGN.md §3): a `UnicrmError` as it is, body-parser's and Express's
 * client errors as their 4xx, anything else a 500 without details (logged with its stack as `unexpected error`).
 */
export function toUnicrmError(err: unknown, logger: Logger, requestId?: string): UnicrmError {
  if (isUnicrmError(err)) return err;
  const known = bodyParserError((err ?? {}) as object) ?? clientError((err ?? {}) as object);
  if (known) return known;
  logger.error({ req_id: requestId, err }, 'unexpected error');
  return new UnicrmError(500, 'Something went wrong inside unicrm; the error was logged.');
}

/**
 * Renders a failure as `{ statusCode, error, message, ... }` with its headers; when the answer had started
 * already, the connection is closed instead (the client sees a cut answer, not a wrong one). A remote error carries
 * the provider's forwarded headers only: unicrm's own `RateLimit-*` headers, set when the request was counted, are
 * taken off (issue 12: a client must not read unicrm's budget as the provider's, nor mix the two).
 */
export function sendError(res: ServerResponse, err: unknown, logger: Logger): void {
  const error = toUnicrmError(err, logger, requestIdOf(res));
  // JSON.parse's message quotes a piece of the body, which may hold credentials: the caller sees it, the log does not.
  noteErrorMessage(res, QUOTES_THE_BODY.has(error) ? 'The body is not valid JSON (the details quote the body; not logged).' : error.message);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (error.isRemote) for (const name of RATE_LIMIT_HEADERS) res.removeHeader(name);
  sendJsonText(res, error.statusCode, JSON.stringify(error.body), error.headers as Record<string, string>);
}

/** The one Express error middleware: {@link sendError}. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, _req, res, _next) => sendError(res, err, logger);
}

/** Unknown routes: a 404 in the error shape, pointing at the API description. */
export const notFound: RequestHandler = (req, _res, next) => {
  next(UnicrmError.notFound(`No route ${req.method} ${req.path}. The API is described at GET /openapi.json.`));
};

/** A known path called with another method: 405 naming the allowed ones. */
export function methodNotAllowed(allowed: string[]): RequestHandler {
  return (req, res, next) => {
    res.set('Allow', allowed.join(', '));
    next(new UnicrmError(405, `${req.method} is not allowed on ${req.path}; use ${allowed.join(' or ')}.`));
  };
}
