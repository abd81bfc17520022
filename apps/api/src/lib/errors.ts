import { NOT_A_JSON_OBJECT } from '@unicrm/core';
import { isUnicrmError, UnicrmError } from '@unicrm/model';
import type { ErrorRequestHandler, RequestHandler } from 'express';

/** body-parser error types and the answers DESIGN.md §2 "Body" gives them. */
function bodyParserError(error: { type?: unknown; message?: unknown; body?: unknown }): UnicrmError | undefined {
  switch (error.type) {
    case 'entity.too.large':
      return new UnicrmError(413, 'The body is larger than 1 MiB.');
    case 'entity.parse.failed': {
      // Strict parsing refuses a top-level string, number, boolean or null before JSON.parse can say why.
      const first = String(error.body ?? '').trimStart()[0];
      if (first !== undefined && first !== '{' && first !== '[') return UnicrmError.badRequest(NOT_A_JSON_OBJECT);
      return UnicrmError.badRequest(`The body is not valid JSON: ${String(error.message)}`);
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
 * The one error middleware (DESIGN.md §3): renders every failure as `{ statusCode, error, message, ... }`
 * with its headers; anything unexpected becomes a 500 without details (logged with its stack).
 */
export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  let error: UnicrmError;
  if (isUnicrmError(err)) error = err;
  else error = bodyParserError(err ?? {}) ?? clientError(err ?? {}) ?? new UnicrmError(500, 'Something went wrong inside unicrm; the error was logged.');
  if (error.statusCode === 500) req.log?.error({ err }, 'unexpected error');
  res.locals.errorMessage = error.message;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.status(error.statusCode).set(error.headers).json(error.body);
};

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
