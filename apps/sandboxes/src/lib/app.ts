import express, { type NextFunction, type Request, type Response } from 'express';
import {
  errorBody,
  faultErrorBody,
  invalidParameterError,
  type JsonObject,
  PipelinerError,
  routeNotFoundError,
} from './errors';
import type { ContractViolation, OpenApiContract } from './contract/openapi-contract';
import { FAULT_HEADER, type FaultController, parseFaultRule, ruleMatches } from './faults';
import { sendJson, setResponseCheck } from './http';
import { entitiesRouter, type SpaceConfig } from './routes';
import type { SandboxStore } from './store';
import type { FaultRule, RecordedRequest } from './types';

/** Path prefix of the sandbox's own admin routes (never part of Pipeliner's API, never recorded). */
export const ADMIN_PREFIX = '/__sandbox';

/** Everything the Express application works on. */
export interface AppContext {
  store: SandboxStore;
  config: SpaceConfig;
  faults: FaultController;
  /** Remote fault injection (header and admin route) allowed. */
  faultsEnabled: boolean;
  /** Recorded requests (mutated in place). */
  requests: RecordedRequest[];
  logRequests: boolean;
  /** Contract checks against Pipeliner's OpenAPI document (off when absent). */
  contract?: ContractRecorder;
}

/** Runs the contract checks on every exchange and hands their violations over. */
export interface ContractRecorder {
  contract: OpenApiContract;
  record(violations: ContractViolation[]): void;
}

/** Largest accepted request body; larger ones answer 413 in the `Error` shape. */
export const BODY_LIMIT = '5mb';

function headerFault(req: Request): FaultRule | undefined {
  const raw = req.headers[FAULT_HEADER];
  const text = Array.isArray(raw) ? raw[0] : raw;
  if (text === undefined || text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalidParameterError(`Invalid X-Sandbox-Fault header: not JSON.`);
  }
  try {
    return parseFaultRule(value);
  } catch (error) {
    throw invalidParameterError(`Invalid X-Sandbox-Fault header: ${(error as Error).message}`);
  }
}

function splitUrl(url: string): { path: string; query: string } {
  const index = url.indexOf('?');
  return index === -1 ? { path: url, query: '' } : { path: url.slice(0, index), query: url.slice(index + 1) };
}

/**
 * Checks each request against Pipeliner's OpenAPI document on arrival, and registers the check of its answer
 * (run by `sendJson`, so answers corrupted by a body fault, connection resets and hung requests are not checked).
 * Admin routes are not part of Pipeliner's API and are skipped. A failing check is itself recorded.
 */
function contractMiddleware(recorder: ContractRecorder) {
  const guarded = (exchange: { method: string; path: string }, run: () => ContractViolation[], direction: ContractViolation['direction']) => {
    try {
      recorder.record(run());
    } catch (error) {
      recorder.record([{ direction, ...exchange, location: 'operation', instancePath: '', message: `contract check failed: ${(error as Error).message}` }]);
    }
  };
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.path.startsWith(ADMIN_PREFIX)) return next();
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
    setResponseCheck(res, (status, text) =>
      guarded(
        where,
        () => recorder.contract.checkResponse({ ...exchange, status, body: JSON.parse(text), contentType: 'application/json' }),
        'response',
      ),
    );
    next();
  };
}

function adminRouter(ctx: AppContext): express.Router {
  const router = express.Router();
  router.get(`${ADMIN_PREFIX}/faults`, (_req, res) => sendJson(res, 200, { success: true, data: ctx.faults.list() }));
  router.post(`${ADMIN_PREFIX}/faults`, (req, res) => {
    const text = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    let rule: FaultRule;
    try {
      rule = parseFaultRule(JSON.parse(text || 'null'));
    } catch (error) {
      throw invalidParameterError(error instanceof SyntaxError ? 'Missing or invalid JSON data.' : (error as Error).message);
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

/**
 * Builds the Express application: raw body capture, request log, contract checks (when on), fault injection,
 * admin routes (faults on), Pipeliner's entity routes, the bare 404 (pipeliner-api.md §4), and one error renderer.
 */
export function createApp(ctx: AppContext): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', false);

  app.use(express.raw({ type: () => true, limit: BODY_LIMIT }));

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
  if (ctx.contract) app.use(contractMiddleware(ctx.contract));

  // Programmatic rules (injectFault) always apply; the header and the admin route only with faults enabled.
  app.use(async (req: Request, res: Response, next: NextFunction) => {
    if (req.path.startsWith(ADMIN_PREFIX)) return next();
    try {
      const fromHeader = ctx.faultsEnabled ? headerFault(req) : undefined;
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

  app.use(entitiesRouter(ctx.store, ctx.config));

  app.use((_req: Request, _res: Response, next: NextFunction) => next(routeNotFoundError()));

  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent || res.destroyed) return;
    if (error instanceof PipelinerError) {
      sendJson(res, error.status, error.body, error.headers);
      return;
    }
    const status = httpStatusOf(error);
    if (status === 413) {
      sendJson(res, 413, errorBody(413, 117, 'ERROR_PARAMETER_INVALID', `Request body is larger than ${BODY_LIMIT}.`));
    } else if (status !== undefined && status >= 400 && status < 500) {
      sendJson(res, 400, errorBody(400, 117, 'ERROR_PARAMETER_INVALID', 'Missing or invalid JSON data.'));
    } else {
      sendJson(res, 500, faultErrorBody(500));
    }
  });

  return app;
}

function httpStatusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const status = (error as { status?: unknown; statusCode?: unknown }).status ?? (error as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' ? status : undefined;
}
