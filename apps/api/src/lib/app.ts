import type { UnicrmCore, UnifiedResponse } from '@unicrm/core';
import express, { type Express } from 'express';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { errorHandler, methodNotAllowed, notFound, sendError } from './errors';
import { beginRequest, createRateLimiters, type RateLimitPair, rawQuery, requestIdOf, requestLogger, sendJsonText } from './front-door';
import { accountLimitKey, authenticate, bodyRule, countRequest, jsonBody, rateLimit, readJsonBody, requireJsonBody } from './middleware';

/** The unicrm API as a node:http request listener, with what it holds that must be let go. */
export type UnicrmApp = RequestListener & {
  /** Stops the rate limiters' timers (the core is closed by its owner). */
  close(): void;
};

/**
 * The HTTP front door to the core (DESIGN.md §1): routes call core and render what it returns; no business
 * logic lives here. Every request first gets its id, helmet's headers and its log line (`front-door.ts`).
 * `POST /unified/crm/stages`, the hot path, is then served by {@link createStageHandler} on node:http;
 * every other request by an Express 5 app. Both use the same authentication, rate limits, body parser and
 * error rendering, so answers are the same whichever serves them (docs/benchmarks.md says why there are two).
 * Routes: `GET /health` (no auth), `GET /openapi.json`, `POST /unified/crm/stages`,
 * `GET /unified/crm/stages/meta/create`, `GET|POST /integrated-account`, `GET|PATCH|DELETE /integrated-account/:id`.
 */
export function createApp(core: UnicrmCore): UnicrmApp {
  const limits = createRateLimiters(core.config.rateLimits);
  const expressApp = createExpressApp(core, limits);
  const createStage = createStageHandler(core, limits);
  const accessLog = requestLogger(core.logger);
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const requestId = beginRequest(req, res, accessLog);
    const url = req.url ?? '';
    const hot = req.method === 'POST' && url.startsWith('/unified/crm/stages') && (url.length === 19 || url.charCodeAt(19) === 63 /* ? */);
    if (hot) createStage(req, res, requestId);
    else expressApp(req, res);
  };
  return Object.assign(listener, {
    close() {
      limits.perToken?.close();
      limits.perAccount?.close();
    },
  });
}

/** Writes what `core.createStage` answered: its status, headers and body (stored bytes when replayed). */
function sendStageAnswer(res: ServerResponse, answer: UnifiedResponse): void {
  sendJsonText(res, answer.statusCode, answer.rawText ?? JSON.stringify(answer.body), answer.headers);
}

/**
 * `POST /unified/crm/stages` on node:http, in the order the Express routes apply the same rules: auth (401),
 * rate limits per token and per account (429), the body (`readJsonBody`: 413, 415, 400), then the core's create.
 */
function createStageHandler(core: UnicrmCore, limits: RateLimitPair): (req: IncomingMessage, res: ServerResponse, requestId: string) => void {
  return (req, res, requestId) => {
    const serve = async () => {
      const caller = core.tokens.authenticate(req.headers.authorization);
      const url = req.url as string;
      await countRequest(limits, res, caller.tokenId, accountLimitKey(caller.environmentId, url));
      await readJsonBody(req, res);
      const request = req as IncomingMessage & { body?: unknown };
      const bodyError = bodyRule(request);
      if (bodyError) throw bodyError;
      const answer = await core.createStage({
        environmentId: caller.environmentId,
        query: rawQuery(url),
        body: request.body,
        // Node joins repeated headers of this kind with ", ", as Express's req.get shows them.
        idempotencyKey: req.headers['idempotency-key'] as string | undefined,
        requestId,
      });
      sendStageAnswer(res, answer);
    };
    serve().catch((error: unknown) => sendError(res, error, core.logger));
  };
}

/** Every route but the create: Express 5. */
function createExpressApp(core: UnicrmCore, limits: RateLimitPair): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', false);
  app.set('etag', false);

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.use(authenticate(core), rateLimit(limits));

  app.get('/openapi.json', (_req, res) => {
    res.json(core.openApiDocument());
  });

  app.get('/unified/crm/stages/meta/create', (req, res) => {
    res.json(core.stageCreateMeta(req.environmentId as string, rawQuery(req.originalUrl), requestIdOf(res)));
  });
  app.all('/unified/crm/stages/meta/create', methodNotAllowed(['GET']));

  // Spellings of the path the node:http handler does not take (`/unified/crm/stages/`, other letter cases).
  app.post('/unified/crm/stages', jsonBody, requireJsonBody, async (req, res) => {
    sendStageAnswer(
      res,
      await core.createStage({
        environmentId: req.environmentId as string,
        query: rawQuery(req.originalUrl),
        body: req.body,
        idempotencyKey: req.get('idempotency-key'),
        requestId: requestIdOf(res),
      }),
    );
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
    res.json(core.accounts.get(req.environmentId as string, req.params.id as string, requestIdOf(res)));
  });
  app.patch('/integrated-account/:id', jsonBody, requireJsonBody, async (req, res) => {
    res.json(await core.accounts.update(req.environmentId as string, req.params.id as string, req.body, requestIdOf(res)));
  });
  app.delete('/integrated-account/:id', (req, res) => {
    res.json(core.accounts.delete(req.environmentId as string, req.params.id as string));
  });
  app.all('/integrated-account/:id', methodNotAllowed(['GET', 'PATCH', 'DELETE']));

  app.use(notFound);
  app.use(errorHandler(core.logger));
  return app;
}
