import { UNICRM_VERSION, type UnicrmCore } from '@unicrm/core';
import express, { type Express } from 'express';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { createDataPlane, isDataPlanePath } from './data-plane';
import { errorHandler, methodNotAllowed, notFound } from './errors';
import { beginRequest, createRateLimiters, type RateLimitPair, rawQuery, requestIdOf, requestLogger } from './front-door';
import { authenticate, jsonBody, rateLimit, requireJsonBody } from './middleware';

/** The unicrm API as a node:http request listener, with what it holds that must be let go. */
export type UnicrmApp = RequestListener & {
  /** Stops the rate limiters' timers (the core is closed by its owner). */
  close(): void;
};

/**
 * The HTTP front door to the core (DESIGN.md §1): routes call core and render what it returns; no business
 * logic lives here. Every request first gets its id, helmet's headers and its log line (`front-door.ts`). Then two
 * routers with one behaviour (the same authentication, rate limits, body reader and error renderer):
 * - the data plane, every `/unified/...` and `/proxy/...` request, on one route table on node:http (`data-plane.ts`);
 * - the admin plane on Express 5: `GET /health`, `GET /ready`, `GET /version` (no auth), `GET /openapi.json`, `GET|POST /integrated-account`,
 *   `GET|PATCH|DELETE /integrated-account/:id`.
 */
export function createApp(core: UnicrmCore): UnicrmApp {
  const limits = createRateLimiters(core.config.rateLimits, core.rateLimitCounters && { store: core.rateLimitCounters, logger: core.logger });
  const expressApp = createExpressApp(core, limits);
  const dataPlane = createDataPlane(core, limits, core.logger);
  const accessLog = requestLogger(core.logger);
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const requestId = beginRequest(req, res, accessLog);
    if (isDataPlanePath(req.url ?? '')) dataPlane(req, res, requestId);
    else expressApp(req, res);
  };
  return Object.assign(listener, {
    close() {
      limits.perToken?.close();
      limits.perAccount?.close();
    },
  });
}

/** The admin plane: Express 5. */
function createExpressApp(core: UnicrmCore, limits: RateLimitPair): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', false);
  app.set('etag', false);

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  // Readiness for a load balancer (docs/deployment.md "Readiness"): 503 while the store cannot serve.
  app.get('/ready', async (_req, res) => {
    const state = await core.readiness();
    res.status(state.ready ? 200 : 503).json({ status: state.ready ? 'ready' : 'not_ready', store: state.store, ...(state.detail && { detail: state.detail }) });
  });
  app.get('/version', (_req, res) => {
    res.json({ version: UNICRM_VERSION, node: process.version, store: core.config.databaseUrl ? 'postgres' : 'sqlite' });
  });

  app.use(authenticate(core), rateLimit(limits));

  app.get('/openapi.json', (_req, res) => {
    res.json(core.openApiDocument());
  });

  app.post('/integrated-account', jsonBody, requireJsonBody, async (req, res) => {
    res.status(201).json(await core.accounts.create(req.environmentId as string, req.body));
  });
  app.get('/integrated-account', async (req, res) => {
    res.json(await core.accounts.list(req.environmentId as string, rawQuery(req.originalUrl)));
  });
  app.all('/integrated-account', methodNotAllowed(['GET', 'POST']));
  app.get('/integrated-account/:id', async (req, res) => {
    res.json(await core.accounts.get(req.environmentId as string, req.params.id as string, requestIdOf(res)));
  });
  app.patch('/integrated-account/:id', jsonBody, requireJsonBody, async (req, res) => {
    res.json(await core.accounts.update(req.environmentId as string, req.params.id as string, req.body, requestIdOf(res)));
  });
  app.delete('/integrated-account/:id', async (req, res) => {
    res.json(await core.accounts.delete(req.environmentId as string, req.params.id as string));
  });
  app.all('/integrated-account/:id', methodNotAllowed(['GET', 'PATCH', 'DELETE']));

  app.use(notFound);
  app.use(errorHandler(core.logger));
  return app;
}
