import { integratedAccountIdOf, type UnicrmCore } from '@unicrm/core';
import { type RateLimitHit, UnicrmError } from '@unicrm/model';
import express, { type RequestHandler } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { type RateLimitCount, type RateLimitPair, rawQuery } from './front-door';

/** Largest accepted body (DESIGN.md §2: 1 MiB, else 413). */
export const BODY_LIMIT = '1mb';
/** {@link BODY_LIMIT} in bytes. */
export const BODY_LIMIT_BYTES = 1_048_576;

/** body-parser's JSON parser: strict JSON, 1 MiB, `application/json` and `application/*+json`, any charset and Content-Encoding it reads. */
const bodyParserJson = express.json({ limit: BODY_LIMIT, strict: true, type: ['application/json', 'application/*+json'] });

type BodyRequest = IncomingMessage & { body?: unknown };

/** Runs body-parser's JSON parser on `req`; resolves once `req.body` is set (or left undefined), rejects with its error. */
function parseWithBodyParser(req: BodyRequest, res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) =>
    bodyParserJson(req as express.Request, res as express.Response, (error?: unknown) => (error ? reject(error) : resolve())),
  );
}

/**
 * True for the request almost every client sends, which body-parser would read as plain UTF-8: `Content-Type`
 * exactly `application/json` (optionally `; charset=utf-8`), no `Content-Encoding` or `Transfer-Encoding`, a
 * `Content-Length` from 1 byte to the limit.
 */
function isPlainJsonRequest(req: IncomingMessage): boolean {
  const headers = req.headers;
  const type = headers['content-type'];
  if (type !== 'application/json') {
    const lower = type?.toLowerCase();
    if (lower !== 'application/json' && lower !== 'application/json; charset=utf-8' && lower !== 'application/json;charset=utf-8') return false;
  }
  if (headers['content-encoding'] !== undefined || headers['transfer-encoding'] !== undefined) return false;
  const length = headers['content-length'];
  if (length === undefined || !/^[0-9]{1,7}$/.test(length)) return false;
  const bytes = Number(length);
  return bytes > 0 && bytes <= BODY_LIMIT_BYTES;
}

/**
 * Reads a JSON body into `req.body`, exactly as body-parser would (DESIGN.md §2 "Body": 413 over 1 MiB, 415 for
 * an unsupported charset or encoding, 400 for malformed or non-object-or-array JSON; see {@link bodyRule} for
 * missing and non-JSON bodies), for both routers. A {@link isPlainJsonRequest plain request} is read and parsed
 * here, without body-parser's per-request work (issue 8); if that parse fails, the same bytes go through
 * body-parser, so every error is body-parser's own. Every other request goes to body-parser as it comes.
 * @throws (rejects with) body-parser's error for the request; `errors.ts` turns it into the answer
 */
export function readJsonBody(req: BodyRequest, res: ServerResponse): Promise<void> {
  // Declared over the limit: 413 without reading a byte (body-parser would read it all first, and a client that sent
  // "Expect: 100-continue" waits for an answer before sending any; server.ts does not invite it).
  if (Number(req.headers['content-length']) > BODY_LIMIT_BYTES && req.headers['transfer-encoding'] === undefined) {
    return Promise.reject(Object.assign(new Error('request entity too large'), { type: 'entity.too.large', status: 413 }));
  }
  if (!isPlainJsonRequest(req)) return parseWithBodyParser(req, res);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    // As raw-body reports a request the client gave up on (an 'error' and/or 'aborted' event, depending on when).
    const aborted = () => reject(Object.assign(new Error('request aborted'), { type: 'request.aborted' }));
    req.once('error', aborted);
    req.once('aborted', aborted);
    req.once('end', () => {
      const bytes = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      // body-parser's decoder (iconv-lite) drops a byte order mark.
      const text = bytes.toString('utf8', bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0);
      const first = text.charCodeAt(0);
      if (first === 0x7b /* { */ || first === 0x5b /* [ */) {
        try {
          req.body = JSON.parse(text);
          resolve();
          return;
        } catch {
          // body-parser gives the error below
        }
      }
      const replay = Object.assign(Readable.from([bytes]), { headers: req.headers, method: req.method, url: req.url });
      parseWithBodyParser(replay as unknown as BodyRequest, res).then(() => {
        req.body = (replay as unknown as BodyRequest).body;
        resolve();
      }, reject);
    });
  });
}

/** {@link readJsonBody} as Express middleware. */
export const jsonBody: RequestHandler = (req, res, next) => {
  readJsonBody(req, res).then(() => next(), next);
};

/**
 * For routes that take a body, after {@link jsonBody}: 415 when a body came with another content type, 400 when
 * none came (DESIGN.md §2 "Body").
 * @returns the error to answer with, or undefined when the request has a parsed JSON body
 */
export function bodyRule(req: BodyRequest): UnicrmError | undefined {
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
    core.tokens.authenticate(req.headers.authorization).then((caller) => {
      req.environmentId = caller.environmentId;
      req.tokenId = caller.tokenId;
      next();
    }, next);
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
 * (truto-contract.md §3.4), and sets the RateLimit headers of the narrower one that applies (the account's on
 * unified routes), as express-rate-limit's two middlewares did (the second overwrote the first). A request the
 * token's limit refuses is not counted against the account (as before), but the account's window is looked at:
 * when either limit refuses, the 429's `Retry-After` (and the headers and message) are those of the full window that
 * resets last, so a client that waits that long is not refused again by the other limit (issue 12).
 * @param accountKey from {@link accountLimitKey}; undefined outside unified routes or without an account
 * @throws UnicrmError 429 over either limit
 */
export async function countRequest(limits: RateLimitPair, res: ServerResponse, tokenId: string, accountKey: string | undefined): Promise<void> {
  let token: RateLimitCount | undefined;
  let account: RateLimitCount | undefined;
  const accountLimiter = accountKey !== undefined ? limits.perAccount : undefined;
  let counted = false;
  if (limits.shared && (limits.perToken || accountLimiter)) {
    // Shared counters (several nodes): both limits in one round trip, with the same rule as below.
    const checks = [limits.perToken?.check(tokenId), accountLimiter?.check(accountKey as string)].filter((c) => c !== undefined);
    try {
      const hits = await limits.shared.store.count(checks);
      let i = 0;
      if (limits.perToken) token = limits.perToken.countOf(hits[i++] as RateLimitHit);
      if (accountLimiter) account = accountLimiter.countOf(hits[i] as RateLimitHit);
      counted = true;
    } catch (error) {
      limits.shared.onFailure(error); // fail open: counted in this node's memory below
    }
  }
  if (!counted) {
    token = limits.perToken ? await limits.perToken.hit(tokenId) : undefined;
    if (accountLimiter) account = token?.exceeded ? await accountLimiter.peek(accountKey as string) : await accountLimiter.hit(accountKey as string);
  }
  if (token?.exceeded || account?.exceeded) {
    // Every full window must reset before a request can pass: name the one that resets last.
    let longest = token?.exceeded ? token : (account as RateLimitCount);
    for (const count of [token, account]) if (count?.full && count.resetSeconds > longest.resetSeconds) longest = count;
    longest.setHeaders(res);
    throw longest.limiter.tooMany(longest);
  }
  (account ?? token)?.setHeaders(res);
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
