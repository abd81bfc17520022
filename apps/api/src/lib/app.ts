import { UNICRM_VERSION, type UnicrmCore } from '@unicrm/core';
import express, { type Express } from 'express';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { createDataPlane, isDataPlanePath } from './data-plane';
import { type ApiMetrics, createApiMetrics } from './metrics';
import { errorHandler, methodNotAllowed, notFound } from './errors';
import { beginRequest, createRateLimiters, type RateLimitPair, rawQuery, requestIdOf, requestLogger } from './front-door';
import { mountConnectPage } from './connect-page';
import { authenticate, jsonBody, rateLimit, requireJsonBody } from './middleware';

/** The unicrm API as a node:http request listener, with what it holds that must be let go. */
export type UnicrmApp = RequestListener & {
  /** The API's Prometheus metrics, served by {@link metricsListener} on the metrics port. */
  metrics: ApiMetrics;
  /** Stops the rate limiters' timers and detaches the metrics (the core is closed by its owner). */
  close(): void;
};

/**
 * The metrics listener (docs/deployment.md "Metrics"): `GET /metrics` in Prometheus' text format, anything else 404.
 * Served on its own port (`UNICRM_METRICS_PORT`, on `UNICRM_METRICS_HOST`, default 127.0.0.1), never on the API's.
 */
export function metricsListener(metrics: ApiMetrics): RequestListener {
  return (req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: the metrics are at GET /metrics.\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (error: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(error as Error).message}\n`),
    );
  };
}

/**
 * The HTTP front door to the core (DESIGN.md §1): routes call core and render what it returns; no business
 * logic lives here. Every request first gets its id, helmet's headers and its log line (`front-door.ts`). Then two
 * routers with one behaviour (the same authentication, rate limits, body reader and error renderer):
 * - the data plane, every `/unified/...` and `/proxy/...` request, on one route table on node:http (`data-plane.ts`);
 * - the admin plane on Express 5: `GET /health`, `GET /ready`, `GET /version` (no auth), `GET /openapi.json`, `GET|POST /integrated-account`,
 *   `GET|PATCH|DELETE /integrated-account/:id`, `POST /link-token`, `/webhook` (CRUD, `/webhook/test`, `/webhook/:id/deliveries`);
 * - the connect page, `GET|POST /connect`, authenticated by its link token (`connect-page.ts`).
 */
export function createApp(core: UnicrmCore): UnicrmApp {
  const metrics = createApiMetrics(core);
  const limits = createRateLimiters(core.config.rateLimits, {
    ...(core.rateLimitCounters && { shared: { store: core.rateLimitCounters, logger: core.logger } }),
    onReject: (limit) => metrics.rateLimited(limit),
  });
  const expressApp = createExpressApp(core, limits);
  const dataPlane = createDataPlane(core, limits, core.logger);
  const accessLog = requestLogger(core.logger);
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const requestId = beginRequest(req, res, accessLog, (statusCode) => metrics.request(req, statusCode));
    if (isDataPlanePath(req.url ?? '')) dataPlane(req, res, requestId);
    else expressApp(req, res);
  };
  return Object.assign(listener, {
    metrics,
    close() {
      limits.perToken?.close();
      limits.perAccount?.close();
      metrics.close();
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

  // The connect page: its credential is the link token, not an API token (docs/connect.md).
  mountConnectPage(app, core);

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

  // Link tokens and webhooks (issue 17; docs/connect.md).
  app.post('/link-token', jsonBody, requireJsonBody, async (req, res) => {
    const baseUrl = core.config.publicUrl ?? `${req.protocol}://${req.get('host')}`;
    res.status(201).json(await core.connect.createLinkToken(req.environmentId as string, req.body, baseUrl));
  });
  app.all('/link-token', methodNotAllowed(['POST']));
  app.post('/webhook', jsonBody, requireJsonBody, async (req, res) => {
    res.status(201).json(await core.webhooks.create(req.environmentId as string, req.body));
  });
  app.get('/webhook', async (req, res) => {
    res.json(await core.webhooks.list(req.environmentId as string, rawQuery(req.originalUrl)));
  });
  app.all('/webhook', methodNotAllowed(['GET', 'POST']));
  app.post('/webhook/test', jsonBody, requireJsonBody, async (req, res) => {
    res.status(202).json(await core.webhooks.test(req.environmentId as string, req.body));
  });
  app.all('/webhook/test', methodNotAllowed(['POST']));
  app.get('/webhook/:id/deliveries', async (req, res) => {
    res.json(await core.webhooks.deliveries(req.environmentId as string, req.params.id as string, rawQuery(req.originalUrl)));
  });
  app.get('/webhook/:id', async (req, res) => {
    res.json(await core.webhooks.get(req.environmentId as string, req.params.id as string));
  });
  app.patch('/webhook/:id', jsonBody, requireJsonBody, async (req, res) => {
    res.json(await core.webhooks.update(req.environmentId as string, req.params.id as string, req.body));
  });
  app.delete('/webhook/:id', async (req, res) => {
    res.json(await core.webhooks.delete(req.environmentId as string, req.params.id as string));
  });
  app.all('/webhook/:id', methodNotAllowed(['GET', 'PATCH', 'DELETE']));

  app.use(notFound);
  app.use(errorHandler(core.logger));
  return app;
}
