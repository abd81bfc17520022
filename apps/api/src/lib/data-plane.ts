import type { UnicrmCore, UnifiedRequest, UnifiedResponse } from '@unicrm/core';
import { UnicrmError } from '@unicrm/model';
import Router from 'find-my-way';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { traceOf } from './metrics';
import { sendError } from './errors';
import { type RateLimitPair, rawQuery, sendJsonText } from './front-door';
import { accountLimitKey, bodyRule, countRequest, readJsonBody } from './middleware';

type Params = Record<string, string | undefined>;
type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** What a route does once the caller is authenticated and counted: its answer, or a thrown error. */
type Route = (req: IncomingMessage, res: ServerResponse, params: Params, caller: { environmentId: string; requestId: string }) => Promise<UnifiedResponse>;

const SERVED_METHODS: Method[] = ['GET', 'POST', 'PATCH', 'DELETE'];
const OTHER_METHODS = ['PUT', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT'];

/** True for a path of the data plane: `/unified`, `/proxy` and everything under them, in any letter case. */
export function isDataPlanePath(url: string): boolean {
  const end = url.search(/[?#]/);
  const path = (end < 0 ? url : url.slice(0, end)).toLowerCase();
  return path === '/unified' || path.startsWith('/unified/') || path === '/proxy' || path.startsWith('/proxy/');
}

/** The JSON body of a request that takes one: read, then checked (415, 413, 400; middleware.ts). */
async function jsonBodyOf(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
  await readJsonBody(req, res);
  const request = req as IncomingMessage & { body?: unknown };
  const error = bodyRule(request);
  if (error) throw error;
  return request.body;
}

/** True when a `Prefer` header (RFC 7240 §4.2) asks for `return=minimal`, among any other preferences. */
export function prefersMinimal(prefer: string | string[] | undefined): boolean {
  const text = Array.isArray(prefer) ? prefer.join(',') : (prefer ?? '');
  return text.split(',').some((preference) => /^\s*return\s*=\s*"?minimal"?\s*(?:;|$)/i.test(preference));
}

/** Node joins repeated headers of this kind with ", ", as Express's req.get shows them. */
const idempotencyKeyOf = (req: IncomingMessage) => req.headers['idempotency-key'] as string | undefined;

/**
 * The data plane (DESIGN.md §1, §6): one route table on find-my-way (the router Fastify is built on) for every
 * `/unified/...` and `/proxy/...` request, on plain node:http, in front of Express (which keeps the admin plane).
 * Paths match in any letter case and with or without a trailing slash; parameters keep their case. Every route is
 * generic: `/unified/:model/:resource[/:id]` hands the method to the core's use case of that method, whatever the
 * resource (an unknown one is the core's 404; one the account's integration lacks its 501), so adding a resource or
 * a method to a connector adds no route here. Order per request: authentication (401), rate limits per token and per
 * integrated account (429), the route (404; 405 with `Allow` for a known path and another method), the body (POST,
 * PATCH: 413, 415, 400), the core.
 * @returns the handler of one data-plane request (its id already given by the front door)
 */
export function createDataPlane(core: UnicrmCore, limits: RateLimitPair, logger: Logger): (req: IncomingMessage, res: ServerResponse, requestId: string) => void {
  const router = Router({ caseSensitive: false, ignoreTrailingSlash: true, ignoreDuplicateSlashes: false, maxParamLength: 512 });
  const routes = new Map<string, Route>();
  const on = (method: Method, path: string, route: Route) => {
    routes.set(`${method} ${path}`, route);
    router.on(method, path, () => undefined, { route: `${method} ${path}` });
  };
  const unified = (req: IncomingMessage, params: Params, caller: { environmentId: string; requestId: string }, extra: Partial<UnifiedRequest> = {}): UnifiedRequest => ({
    environmentId: caller.environmentId,
    model: params.model ?? '',
    resource: params.resource ?? '',
    query: rawQuery(req.url ?? ''),
    idempotencyKey: idempotencyKeyOf(req),
    requestId: caller.requestId,
    observed: traceOf(req).observed,
    ...extra,
  });

  on('GET', '/unified/:model/:resource', (req, _res, params, caller) => core.unified.list(unified(req, params, caller)));
  on('POST', '/unified/:model/:resource', async (req, res, params, caller) => core.unified.create(unified(req, params, caller, { body: await jsonBodyOf(req, res) })));
  on('POST', '/unified/:model/:resource/batch', async (req, res, params, caller) => {
    const minimal = prefersMinimal(req.headers.prefer);
    const answer = await core.unified.batch({ ...unified(req, params, caller, { body: await jsonBodyOf(req, res) }), representation: minimal ? 'minimal' : 'representation' });
    return minimal ? { ...answer, headers: { ...answer.headers, 'preference-applied': 'return=minimal' } } : answer;
  });
  on('GET', '/unified/:model/:resource/:id', (req, _res, params, caller) => core.unified.get(unified(req, params, caller, { id: params.id })));
  on('PATCH', '/unified/:model/:resource/:id', async (req, res, params, caller) =>
    core.unified.update(unified(req, params, caller, { id: params.id, body: await jsonBodyOf(req, res) })),
  );
  on('DELETE', '/unified/:model/:resource/:id', (req, _res, params, caller) => core.unified.delete(unified(req, params, caller, { id: params.id })));
  const meta: Route = async (req, res, params, caller) => ({
    statusCode: 200,
    body: await core.unified.meta({
      environmentId: caller.environmentId,
      model: params.model ?? '',
      resource: params.resource ?? '',
      method: params.method ?? '',
      ...(params.integration !== undefined && { integration: params.integration }),
      query: rawQuery(req.url ?? ''),
      requestId: caller.requestId,
    }),
  });
  on('GET', '/unified/:model/:resource/meta/:method', meta);
  on('GET', '/unified/:model/:resource/:integration/meta/:method', meta);

  const proxy = (method: Method, withId: boolean, withBody: boolean): Route => async (req, res, params, caller) =>
    core.proxy({
      environmentId: caller.environmentId,
      method,
      resource: params.resource ?? '',
      ...(withId && { id: params.id }),
      query: rawQuery(req.url ?? ''),
      ...(withBody && { body: await jsonBodyOf(req, res) }),
      headers: req.headers,
      idempotencyKey: idempotencyKeyOf(req),
      requestId: caller.requestId,
      observed: traceOf(req).observed,
    });
  on('GET', '/proxy/:resource', proxy('GET', false, false));
  on('POST', '/proxy/:resource', proxy('POST', false, true));
  on('GET', '/proxy/:resource/:id', proxy('GET', true, false));
  on('PATCH', '/proxy/:resource/:id', proxy('PATCH', true, true));
  on('DELETE', '/proxy/:resource/:id', proxy('DELETE', true, false));
  on('POST', '/proxy/:resource/:id', proxy('POST', true, true));

  /** The methods served at a path, for a 405's `Allow`; empty when the path is unknown. */
  const allowedAt = (path: string) => SERVED_METHODS.filter((method) => router.find(method, path) !== null);

  return (req, res, requestId) => {
    const serve = async () => {
      const caller = await core.tokens.authenticate(req.headers.authorization);
      const url = req.url as string;
      await countRequest(limits, res, caller.tokenId, accountLimitKey(caller.environmentId, url));
      const method = req.method ?? 'GET';
      const path = url.split('?', 1)[0] as string;
      let found;
      try {
        found = OTHER_METHODS.includes(method) ? null : router.find(method as Method, path);
      } catch {
        throw UnicrmError.badRequest('The URL path is not valid percent-encoding.');
      }
      if (!found) {
        const allowed = allowedAt(path);
        if (allowed.length > 0) {
          res.setHeader('Allow', allowed.join(', '));
          throw new UnicrmError(405, `${method} is not allowed on ${path}; use ${allowed.join(' or ')}.`);
        }
        throw UnicrmError.notFound(`No route ${method} ${path}. The API is described at GET /openapi.json.`);
      }
      const template = (found.store as { route: string }).route;
      traceOf(req).route = template.slice(template.indexOf(' ') + 1);
      const route = routes.get(template) as Route;
      const answer = await route(req, res, found.params as Params, { environmentId: caller.environmentId, requestId });
      sendJsonText(res, answer.statusCode, answer.rawText ?? JSON.stringify(answer.body), answer.headers);
    };
    serve().catch((error: unknown) => sendError(res, error, logger));
  };
}
