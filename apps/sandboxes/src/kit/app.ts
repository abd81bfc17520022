import express, { type NextFunction, type Request, type Response } from 'express';
import type { ContractViolation, OpenApiContract } from './contract/openapi-contract';
import { SandboxHttpError } from './errors';
import { FAULT_HEADER, type FaultController, ruleMatches } from './faults';
import { sendJson, setJsonContentType, setResponseCheck } from './http';
import type { ProviderErrors } from './provider';
import type { RateLimitController } from './rate-limit';
import type { FaultRule, JsonObject, RecordedRequest } from './types';

/** Path prefix of the kit's own admin routes (never part of a provider's API, never recorded, never checked). */
export const ADMIN_PREFIX = '/__sandbox';

/** Everything the Express application of one sandbox works on. */
export interface KitAppContext {
  /** The provider's routes. */
  router: express.Router;
  /** The provider's error shapes. */
  errors: ProviderErrors;
  /** `Content-Type` of JSON answers (default application/json). */
  jsonContentType?: string;
  faults: FaultController;
  /** Remote fault injection (header and admin route) allowed. */
  faultsEnabled: boolean;
  /** Recorded requests (mutated in place). */
  requests: RecordedRequest[];
  logRequests: boolean;
  /** Contract checks against the provider's OpenAPI document (off when absent). */
  contract?: ContractRecorder;
  /** Paths the contract checks skip: the module's endpoints outside its API document. */
  outsideContract?: RegExp;
  /** The provider's rate limits (absent when the module declares none). */
  rateLimits?: RateLimitController;
}

/** Runs the contract checks on every exchange and hands their violations over. */
export interface ContractRecorder {
  contract: OpenApiContract;
  record(violations: ContractViolation[]): void;
}

/** Largest accepted request body; larger ones answer the provider's 413. */
export const BODY_LIMIT = '5mb';

function headerFault(req: Request, ctx: KitAppContext): FaultRule | undefined {
  const raw = req.headers[FAULT_HEADER];
  const text = Array.isArray(raw) ? raw[0] : raw;
  if (text === undefined || text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw ctx.errors.badRequest(`Invalid X-Sandbox-Fault header: not JSON.`);
  }
  try {
    return ctx.faults.parse(value);
  } catch (error) {
    throw ctx.errors.badRequest(`Invalid X-Sandbox-Fault header: ${(error as Error).message}`);
  }
}

function splitUrl(url: string): { path: string; query: string } {
  const index = url.indexOf('?');
  return index === -1 ? { path: url, query: '' } : { path: url.slice(0, index), query: url.slice(index + 1) };
}

/**
 * Checks each request against the provider's OpenAPI document on arrival, and registers the check of its answer
 * (run by `sendJson` / `sendEmpty`, so answers corrupted by a body fault, connection resets and hung requests are not
 * checked). Admin routes are not part of the provider's API and are skipped, as are the module's `outsideContract`
 * paths. A failing check is itself recorded.
 */
function contractMiddleware(recorder: ContractRecorder, outside?: RegExp) {
  const guarded = (exchange: { method: string; path: string }, run: () => ContractViolation[], direction: ContractViolation['direction']) => {
    try {
      recorder.record(run());
    } catch (error) {
      recorder.record([{ direction, ...exchange, location: 'operation', instancePath: '', message: `contract check failed: ${(error as Error).message}` }]);
    }
  };
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.path.startsWith(ADMIN_PREFIX) || outside?.test(req.path)) return next();
    const { path, query } = splitUrl(req.originalUrl);
    const exchange = { method: req.method, path, query };
    const where = { method: req.method, path };
    const contentType = req.headers['content-type'];
    guarded(
      where,
      () =>
        recorder.contract.checkRequest({
          ...exchange,
          body: Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '',
          contentType,
        }),
      'request',
    );
    setResponseCheck(res, (status, responseType, text) =>
      guarded(
        where,
        () =>
          recorder.contract.checkResponse({
            ...exchange,
            status,
            body: text === undefined ? undefined : JSON.parse(text),
            contentType: responseType,
          }),
        'response',
      ),
    );
    next();
  };
}

/** `GET`, `POST`, `DELETE /__sandbox/faults`: list, add, clear the programmatic rules (only with faults enabled). */
function adminRouter(ctx: KitAppContext): express.Router {
  const router = express.Router();
  router.get(`${ADMIN_PREFIX}/faults`, (_req, res) => sendJson(res, 200, { success: true, data: ctx.faults.list() }));
  router.post(`${ADMIN_PREFIX}/faults`, (req, res) => {
    const text = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    let rule: FaultRule;
    try {
      rule = ctx.faults.parse(JSON.parse(text || 'null'));
    } catch (error) {
      throw ctx.errors.badRequest(error instanceof SyntaxError ? 'Missing or invalid JSON data.' : (error as Error).message);
    }
    ctx.faults.add(rule);
    sendJson(res, 201, { success: true, data: rule as JsonObject });
  });
  router.delete(`${ADMIN_PREFIX}/faults`, (_req, res) => {
    ctx.faults.clear();
    sendJson(res, 200, { success: true, data: [] });
  });
  return router;
}

/** The body of an admin request as JSON (`null` when empty). @throws the provider's 400 for text that is not JSON */
function adminJson(req: Request, ctx: KitAppContext): unknown {
  const text = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
  try {
    return JSON.parse(text || 'null');
  } catch {
    throw ctx.errors.badRequest('Missing or invalid JSON data.');
  }
}

/**
 * `GET /__sandbox/rate-limit`: the settings, windows and statistics; `POST` with `{ "on": true, ...overrides }` or
 * `{ "on": false }` switches the limits (counters start afresh); `DELETE` clears the counters and statistics. Always
 * mounted when the module declares limits (switching them needs no `_FAULTS`: they are the provider's behaviour).
 */
function rateLimitRouter(ctx: KitAppContext, limits: RateLimitController): express.Router {
  const router = express.Router();
  const path = `${ADMIN_PREFIX}/rate-limit`;
  const answer = (res: Response) => sendJson(res, 200, { success: true, data: limits.snapshot() as unknown as JsonObject });
  router.get(path, (_req, res) => answer(res));
  router.post(path, (req, res) => {
    const value = adminJson(req, ctx);
    if (typeof value !== 'object' || value === null || Array.isArray(value) || typeof (value as { on?: unknown }).on !== 'boolean') {
      throw ctx.errors.badRequest('Expected a JSON object with "on": true or false (and, with true, the settings to override).');
    }
    const { on, ...overrides } = value as { on: boolean } & Record<string, unknown>;
    if (!on && Object.keys(overrides).length > 0) throw ctx.errors.badRequest('Settings go with "on": true only.');
    try {
      limits.set(on ? overrides : false);
    } catch (error) {
      throw ctx.errors.badRequest(`Invalid rate-limit settings: ${(error as Error).message}`);
    }
    answer(res);
  });
  router.delete(path, (_req, res) => {
    limits.clear();
    answer(res);
  });
  return router;
}

/**
 * Builds the Express application of one sandbox, in this order: raw body capture (every body kept as bytes, up to
 * {@link BODY_LIMIT}), the provider's JSON content type, the request log, contract checks (when on), fault injection,
 * admin routes (faults on; rate limits always), the provider's rate limits (when on), the provider's routes, the provider's 404, and one error renderer that sends a thrown
 * {@link SandboxHttpError} as it is and renders every other error in the provider's shape.
 */
export function createKitApp(ctx: KitAppContext): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', false);

  app.use(express.raw({ type: () => true, limit: BODY_LIMIT }));
  const jsonContentType = ctx.jsonContentType;
  if (jsonContentType) {
    app.use((_req: Request, res: Response, next: NextFunction) => {
      setJsonContentType(res, jsonContentType);
      next();
    });
  }

  app.use((req: Request, _res: Response, next: NextFunction) => {
    if (ctx.logRequests && !req.path.startsWith(ADMIN_PREFIX)) {
      ctx.requests.push({
        method: req.method,
        ...splitUrl(req.originalUrl),
        headers: { ...req.headers },
        body: Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '',
      });
    }
    next();
  });
  if (ctx.contract) app.use(contractMiddleware(ctx.contract, ctx.outsideContract));

  // Programmatic rules (injectFault) always apply; the header and the admin route only with faults enabled.
  app.use(async (req: Request, res: Response, next: NextFunction) => {
    if (req.path.startsWith(ADMIN_PREFIX)) return next();
    try {
      const fromHeader = ctx.faultsEnabled ? headerFault(req, ctx) : undefined;
      // A header rule replaces the programmatic ones for its request (and consumes none of them).
      const rule = fromHeader
        ? ruleMatches(fromHeader, req.method, req.path)
          ? fromHeader
          : undefined
        : ctx.faults.take(req.method, req.path);
      if (rule && (await ctx.faults.apply(rule, req, res))) return;
      next();
    } catch (error) {
      next(error);
    }
  });
  if (ctx.faultsEnabled) app.use(adminRouter(ctx));
  const rateLimits = ctx.rateLimits;
  if (rateLimits) {
    app.use(rateLimitRouter(ctx, rateLimits));
    // The provider's limits: after faults (a status fault answers without being counted), before its routes.
    app.use((req: Request, res: Response, next: NextFunction) => {
      if (req.path.startsWith(ADMIN_PREFIX)) return next();
      try {
        const refusal = rateLimits.handle(req, (name, value) => res.setHeader(name, value));
        next(refusal);
      } catch (error) {
        next(error);
      }
    });
  }

  app.use(ctx.router);

  app.use((req: Request, _res: Response, next: NextFunction) => next(ctx.errors.notFound({ method: req.method, path: req.path })));

  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent || res.destroyed) return;
    const send = (answer: SandboxHttpError) => sendJson(res, answer.status, answer.body, answer.headers);
    if (error instanceof SandboxHttpError) return send(error);
    // Errors of the body reader (express.raw): too large, or unreadable (a bad Content-Encoding, an aborted body).
    const status = httpStatusOf(error);
    if (status === 413) send(ctx.errors.tooLarge(BODY_LIMIT));
    else if (status !== undefined && status >= 400 && status < 500) send(ctx.errors.badRequest('Missing or invalid JSON data.'));
    else send(ctx.errors.internal(error));
  });

  return app;
}

function httpStatusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const status = (error as { status?: unknown; statusCode?: unknown }).status ?? (error as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' ? status : undefined;
}
