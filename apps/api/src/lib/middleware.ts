import type { UnicrmCore } from '@unicrm/core';
import { UnicrmError } from '@unicrm/model';
import express, { type RequestHandler } from 'express';

/** Largest accepted body (DESIGN.md §2: 1 MiB, else 413). */
export const BODY_LIMIT = '1mb';

/** JSON body parsing: strict JSON, 1 MiB; see `requireJsonBody` for missing and non-JSON bodies. */
export const jsonBody: RequestHandler = express.json({ limit: BODY_LIMIT, strict: true, type: ['application/json', 'application/*+json'] });

/**
 * For routes that take a body: 415 when a body came with another content type, 400 when none came
 * (DESIGN.md §2 "Body").
 */
export const requireJsonBody: RequestHandler = (req, _res, next) => {
  // body-parser turns a zero-length JSON body into {}: that is no body, not an empty object.
  const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (req.body !== undefined && hasBody) return next();
  if (hasBody && !req.is(['application/json', 'application/*+json'])) {
    return next(new UnicrmError(415, `The body must be application/json, not ${req.headers['content-type'] ?? 'untyped'}.`));
  }
  next(UnicrmError.badRequest('A JSON body is required, e.g. {"name": "Qualified"} with Content-Type: application/json.'));
};

declare module 'express-serve-static-core' {
  interface Request {
    /** Environment of the caller's API token, set by `authenticate`. */
    environmentId?: string;
  }
}

/** Bearer-token authentication of every route it guards (DESIGN.md §2, §4). */
export function authenticate(core: UnicrmCore): RequestHandler {
  return (req, _res, next) => {
    req.environmentId = core.tokens.authenticate(req.headers.authorization);
    next();
  };
}

/** The query string exactly as the client sent it (without `?`), for `@unicrm/query`. */
export function rawQuery(url: string): string {
  const at = url.indexOf('?');
  return at < 0 ? '' : url.slice(at + 1);
}
