import { isValidRequestId, runWithRequestContext, type UnicrmCore } from '@unicrm/core';
import express, { type Express } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import { randomUUID } from 'node:crypto';
import { errorHandler, methodNotAllowed, notFound } from './errors';
import { authenticate, jsonBody, rateLimits, rawQuery, requireJsonBody } from './middleware';

/**
 * The Express 5 HTTP front door to the core (DESIGN.md §1): routes call core and render what it
 * returns; no business logic lives here.
 * Routes: `GET /health` (no auth), `GET /openapi.json`, `POST /unified/crm/stages`,
 * `GET /unified/crm/stages/meta/create`,
 * `GET|POST /integrated-account`, `GET|PATCH|DELETE /integrated-account/:id`. Security headers (helmet),
 * rate limits per token and per integrated account.
 */
export function createApp(core: UnicrmCore): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', false);
  app.set('etag', false);

  // Request id first: echoed when the caller sent a valid one, else new; every log line of the request carries it.
  app.use((req, res, next) => {
    const incoming = req.headers['x-request-id'];
    const id = isValidRequestId(incoming) ? incoming : randomUUID();
    res.setHeader('x-request-id', id);
    runWithRequestContext({ requestId: id }, next);
  });
  app.use(
    pinoHttp({
      logger: core.logger,
      genReqId: (_req, res) => res.getHeader('x-request-id') as string,
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
      // Error answers carry their own message (set by the error handler); no synthetic stack for a 5xx.
      customErrorObject: (_req, res, _err, value: Record<string, unknown>) => ({ ...value, err: undefined, error: res.locals.errorMessage }),
      customProps: (_req, res) => (res.locals?.errorMessage ? { error: res.locals.errorMessage } : {}),
      serializers: {
        req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, path: req.url.split('?')[0] }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
    }),
  );

  app.use(
    helmet({
      contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
      crossOriginResourcePolicy: { policy: 'same-origin' },
    }),
  );

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });

  const limits = rateLimits(core.config.rateLimits);
  app.use(authenticate(core), limits.perToken);
  app.use('/unified', limits.perAccount);

  app.get('/openapi.json', (_req, res) => {
    res.json(core.openApiDocument());
  });

  app.get('/unified/crm/stages/meta/create', (req, res) => {
    res.json(core.stageCreateMeta(req.environmentId as string, rawQuery(req.originalUrl)));
  });
  app.all('/unified/crm/stages/meta/create', methodNotAllowed(['GET']));

  app.post('/unified/crm/stages', jsonBody, requireJsonBody, async (req, res) => {
    const answer = await core.createStage({
      environmentId: req.environmentId as string,
      query: rawQuery(req.originalUrl),
      body: req.body,
      idempotencyKey: req.get('idempotency-key'),
    });
    res.status(answer.statusCode);
    if (answer.headers) res.set(answer.headers);
    if (answer.rawText !== undefined) res.type('application/json').send(answer.rawText);
    else res.json(answer.body);
  });
  app.all('/unified/crm/stages', methodNotAllowed(['POST']));

  app.post('/integrated-account', jsonBody, requireJsonBody, async (req, res) => {
    res.status(201).json(await core.accounts.create(req.environmentId as string, req.body));
  });
  app.get('/integrated-account', (req, res) => {
    res.json(core.accounts.list(req.environmentId as string, rawQuery(req.originalUrl)));
  });
  app.all('/integrated-account', methodNotAllowed(['GET', 'POST']));
  app.get('/integrated-account/:id', (req, res) => {
    res.json(core.accounts.get(req.environmentId as string, req.params.id as string));
  });
  app.patch('/integrated-account/:id', jsonBody, requireJsonBody, async (req, res) => {
    res.json(await core.accounts.update(req.environmentId as string, req.params.id as string, req.body));
  });
  app.delete('/integrated-account/:id', (req, res) => {
    res.json(core.accounts.delete(req.environmentId as string, req.params.id as string));
  });
  app.all('/integrated-account/:id', methodNotAllowed(['GET', 'PATCH', 'DELETE']));

  app.use(notFound);
  app.use(errorHandler);
  return app;
}
