import { integratedAccountIdOf, type UnicrmCore } from '@unicrm/core';
import { UnicrmError } from '@unicrm/model';
import express, { type RequestHandler } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type RateLimitPair, rawQuery } from './front-door';

/** Largest accepted body (DESIGN.md §2: 1 MiB, else 413). */
export const BODY_LIMIT = '1mb';

/**
 * JSON body parsing (body-parser): strict JSON, 1 MiB, `application/json` and `application/*+json`, any charset
 * and Content-Encoding body-parser reads; see {@link bodyRule} for missing and non-JSON bodies. Works on a plain
 * node:http request too (the create route's own handler uses it).
 */
export const jsonBody: RequestHandler = express.json({ limit: BODY_LIMIT, strict: true, type: ['application/json', 'application/*+json'] });

/**
 * For routes that take a body, after {@link jsonBody}: 415 when a body came with another content type, 400 when
 * none came (DESIGN.md §2 "Body").
 * @returns the error to answer with, or undefined when the request has a parsed JSON body
 */
export function bodyRule(req: IncomingMessage & { body?: unknown }): UnicrmError | undefined {
  // body-parser turns a zero-length JSON body into {}: that is no body, not an empty object.
  const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (req.body !== undefined && hasBody) return undefined;
  // body-parser leaves `body` undefined only when the content type is not one it parses.
  if (hasBody) return new UnicrmError(415, `The body must be application/json, not ${req.headers['content-type'] ?? 'untyped'}.`);
  return UnicrmError.badRequest('A JSON body is required, e.g. {"name": "Qualified"} with Content-Type: application/json.');
}

/** {@link bodyRule} as Express middleware. */
export const requireJsonBody: RequestHandler = (req, _res, next) => next(bodyRule(req));

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
 * The per-account rate-limit key of a unified request: `environment:account id` as `@unicrm/query` reads the
 * `integrated_account_id` (every spelling it accepts counts for the same account), or undefined without one.
 */
export function accountLimitKey(environmentId: string, url: string): string | undefined {
  const id = integratedAccountIdOf(rawQuery(url));
  return id ? `${environmentId}:${id}` : undefined;
}

/**
 * Counts a request against the caller's token and, on unified routes, its integrated account
 * (truto-contract.md §3.4), setting the RateLimit headers.
 * @param accountKey from {@link accountLimitKey}; undefined outside unified routes or without an account
 * @throws UnicrmError 429 over either limit
 */
export async function countRequest(limits: RateLimitPair, res: ServerResponse, tokenId: string, accountKey: string | undefined): Promise<void> {
  if (limits.perToken) await limits.perToken.hit(tokenId, res);
  if (limits.perAccount && accountKey !== undefined) await limits.perAccount.hit(accountKey, res);
}

/** {@link countRequest} as Express middleware (after `authenticate`). */
export function rateLimit(limits: RateLimitPair): RequestHandler {
  return (req, res, next) => {
    // Express matches paths case-insensitively, so the check does too.
    const path = req.path.toLowerCase();
    const unified = path === '/unified' || path.startsWith('/unified/');
    const accountKey = unified ? accountLimitKey(req.environmentId as string, req.originalUrl) : undefined;
    countRequest(limits, res, req.tokenId as string, accountKey).then(() => next(), next);
  };
}
