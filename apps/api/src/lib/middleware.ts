import { integratedAccountIdOf, type RateLimits, type UnicrmCore } from '@unicrm/core';
import { UnicrmError } from '@unicrm/model';
import express, { type Request, type RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';

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
    /** Id of the caller's API token (`static` for UNICRM_API_TOKEN), set by `authenticate`. */
    tokenId?: string;
  }
}

/** Bearer-token authentication of every route it guards (DESIGN.md §2, §4). */
export function authenticate(core: UnicrmCore): RequestHandler {
  return (req, _res, next) => {
    const caller = core.tokens.authenticate(req.headers.authorization);
    req.environmentId = caller.environmentId;
    req.tokenId = caller.tokenId;
    next();
  };
}

/**
 * Rate limits as Truto documents them (truto-contract.md §3.4): per API token on every authenticated
 * route, and per integrated account (the `integrated_account_id` query parameter) on unified routes.
 * express-rate-limit with the IETF draft headers (`RateLimit-Limit`, `RateLimit-Remaining`,
 * `RateLimit-Reset`) and `Retry-After` on a 429. Counters are in memory, per process.
 * @returns the two middlewares; a limit of 0 is a pass-through
 */
export function rateLimits(limits: RateLimits): { perToken: RequestHandler; perAccount: RequestHandler } {
  const make = (limit: number, what: string, key: (req: Request) => string | undefined): RequestHandler => {
    if (limit <= 0) return (_req, _res, next) => next();
    return rateLimit({
      windowMs: limits.windowMs,
      limit,
      standardHeaders: 'draft-6',
      legacyHeaders: false,
      validate: false,
      skip: (req) => key(req) === undefined,
      keyGenerator: (req) => key(req) as string,
      handler: (req, res, next) => {
        const retryAfter = res.getHeader('retry-after') ?? Math.ceil(limits.windowMs / 1000);
        next(
          new UnicrmError(
            429,
            `Rate limit exceeded: ${limit} requests per ${limits.windowMs / 1000} s per ${what}. Retry after ${String(retryAfter)} s.`,
            { truto_error_insight: { rate_limit_error: { description: `unicrm's own limit per ${what}` } } },
          ),
        );
      },
    });
  };
  return {
    perToken: make(limits.perToken, 'API token', (req) => req.tokenId),
    perAccount: make(limits.perAccount, 'integrated account', (req) => {
      const id = integratedAccountIdOf(rawQuery(req.originalUrl));
      return id ? `${req.environmentId}:${id}` : undefined;
    }),
  };
}

/** The query string exactly as the client sent it (without `?`), for `@unicrm/query`. */
export function rawQuery(url: string): string {
  const at = url.indexOf('?');
  return at < 0 ? '' : url.slice(at + 1);
}
