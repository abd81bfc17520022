import { timingSafeEqual } from 'node:crypto';
import { type NextFunction, type Request, type Response, Router } from 'express';
import { isValidTimeZone } from './dates';
import {
  invalidJsonError,
  invalidParameterError,
  type JsonObject,
  methodNotAllowedError,
  unauthorizedError,
  unknownTypeError,
} from './errors';
import { ENTITY_BY_PATH, type EntityPath, isEntityPath } from './fields';
import { sendJson } from '../kit/http';
import { parseListQuery, parseReadOptions, type ReadOptions, runList } from './list-query';
import {
  asBatchObject,
  type EntityOperations,
  PIPELINE_OPERATIONS,
  requirePipeline,
  requireStep,
  type RollbackMethod,
  runBatch,
  STEP_OPERATIONS,
  type WriteOptions,
} from './operations';
import { applyLoadOnly, type RenderContext, renderPipeline, renderStep } from './render';
import type { SandboxStore } from './store';

/**
 * Pipeliner's REST routes for Steps and Pipelines (pipeliner-api.md §2.1, §3):
 * `/api/v100/rest/spaces/:space/entities/{Steps|Pipelines}[/:id | /batch-modify | /batch-delete | /batch-restore]`.
 * Order of checks: route (bare 404/405) -> Basic auth and space (401) -> entity type (404 code 2006) -> handler.
 */

/** Credentials and space the sandbox accepts. */
export interface SpaceConfig {
  username: string;
  password: string;
  spaceId: string;
}

export const ENTITIES_BASE = '/api/v100/rest/spaces/:spaceId/entities/:entity';

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * HTTP Basic auth (§1). Wrong or missing credentials, and credentials used on another space id (API keys are
 * per space, §1 S1), answer 401 with `WWW-Authenticate: Basic realm="restapi"` (sandbox choice, §8 question 5).
 */
export function authorize(req: Request, config: SpaceConfig): void {
  checkCredentials(req.headers.authorization, String(req.params['spaceId']), config);
}

/**
 * The check of {@link authorize} on its parts: the `Authorization` header and the space id of the path.
 * @throws PipelinerError 401 (`ERROR_UNAUTHORIZED`)
 */
export function checkCredentials(authorization: string | undefined, spaceId: string, config: SpaceConfig): void {
  const header = authorization ?? '';
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match) throw unauthorizedError('Missing or invalid Authorization header. Use HTTP Basic auth with the API token and API password.');
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const username = colon === -1 ? decoded : decoded.slice(0, colon);
  const password = colon === -1 ? '' : decoded.slice(colon + 1);
  if (!sameText(username, config.username) || !sameText(password, config.password)) {
    throw unauthorizedError('Invalid API token or API password.');
  }
  if (spaceId !== config.spaceId) {
    throw unauthorizedError(`The API credentials are not valid for space '${spaceId}'.`);
  }
}

function entityPathOf(req: Request): EntityPath {
  const entity = String(req.params['entity']);
  if (!isEntityPath(entity)) throw unknownTypeError(entity);
  return entity;
}

function renderContext(req: Request, store: SandboxStore, config: SpaceConfig): RenderContext {
  const zone = req.headers['timezone'];
  const timeZone = Array.isArray(zone) ? zone[0] : zone;
  if (timeZone !== undefined && timeZone.trim() !== '' && !isValidTimeZone(timeZone.trim())) {
    throw invalidParameterError(`Unknown time zone '${timeZone}' in the Timezone header.`);
  }
  return {
    baseUrl: `${req.protocol}://${req.headers.host ?? 'localhost'}`,
    spaceId: config.spaceId,
    timeZone: timeZone?.trim() ? timeZone.trim() : undefined,
    store,
  };
}

function queryParams(req: Request): URLSearchParams {
  const url = req.originalUrl;
  const index = url.indexOf('?');
  return new URLSearchParams(index === -1 ? '' : url.slice(index + 1));
}

/** `validation-level` (§6): a non-negative integer bitmask, default 0. */
function writeOptions(params: URLSearchParams): WriteOptions {
  const text = params.get('validation-level');
  if (text === null || text.trim() === '') return { validationLevel: 0 };
  if (!/^\d+$/.test(text.trim())) throw invalidParameterError(`Invalid value '${text}' of parameter 'validation-level'.`);
  return { validationLevel: Number(text.trim()) };
}

/** `rollback-method` (§6): 0 (default, roll back all) or 1 (roll back only failed records). */
function rollbackMethod(params: URLSearchParams): RollbackMethod {
  const text = (params.get('rollback-method') ?? '0').trim();
  if (text === '0' || text === '') return 0;
  if (text === '1') return 1;
  throw invalidParameterError(`Invalid value '${text}' of parameter 'rollback-method': use 0 or 1.`);
}

/** The request body as JSON; 400 code 117 "Missing or invalid JSON data." when absent or unparsable (§4). */
function jsonBody(req: Request): unknown {
  const raw: unknown = req.body;
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : '';
  if (!text.trim()) throw invalidJsonError();
  try {
    return JSON.parse(text);
  } catch {
    throw invalidJsonError();
  }
}

function jsonObjectBody(req: Request): JsonObject {
  const body = jsonBody(req);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidJsonError();
  return body as JsonObject;
}

function jsonArrayBody(req: Request): unknown[] {
  const body = jsonBody(req);
  if (!Array.isArray(body)) throw invalidJsonError();
  return body;
}

const OPERATIONS: Record<EntityPath, EntityOperations> = { Steps: STEP_OPERATIONS, Pipelines: PIPELINE_OPERATIONS };

/** Renders one record of a collection with `expand` and `load-only`. */
function renderOne(entity: EntityPath, id: string, ctx: RenderContext, read: ReadOptions): JsonObject {
  const full =
    entity === 'Steps'
      ? renderStep(requireStep(ctx.store, id, true), ctx, read.expand)
      : renderPipeline(requirePipeline(ctx.store, id, true), ctx, read.expand);
  return read.loadOnly ? applyLoadOnly(full, read.loadOnly) : full;
}

const notAllowed = (allowed: string[]) => (_req: Request, _res: Response, next: NextFunction) =>
  next(methodNotAllowedError(allowed));

/** The entities router, served at the application root. */
export function entitiesRouter(store: SandboxStore, config: SpaceConfig): Router {
  const router = Router();

  /** Auth, space, entity type and request context, in Pipeliner's order. */
  const prepare = (req: Request) => {
    authorize(req, config);
    const entity = entityPathOf(req);
    return { entity, ctx: renderContext(req, store, config), params: queryParams(req) };
  };

  router
    .route(ENTITIES_BASE)
    .get((req, res) => {
      const { entity, ctx, params } = prepare(req);
      const query = parseListQuery(params, ENTITY_BY_PATH[entity].fields);
      const records = entity === 'Steps' ? store.allSteps() : store.allPipelines();
      const result = runList<{ id: string; is_deleted: boolean }>(records, query, (record, field) => {
        const value = (record as unknown as Record<string, unknown>)[field];
        return value === undefined ? null : (value as string | number | boolean | null);
      });
      const data = result.items.map((record) => renderOne(entity, record.id, ctx, query));
      const envelope: JsonObject = { success: true, total: result.total };
      if (result.pageInfo) envelope['page_info'] = result.pageInfo;
      envelope['data'] = data;
      sendJson(res, 200, envelope);
    })
    .post((req, res) => {
      const { entity, ctx, params } = prepare(req);
      const body = jsonObjectBody(req);
      const record = OPERATIONS[entity].create(store, body, writeOptions(params));
      sendJson(res, 201, { success: true, data: renderOne(entity, record.id, ctx, parseReadOptions(params)) });
    })
    .all(notAllowed(['GET', 'POST']));

  const batchRoute = (suffix: string, run: (entity: EntityPath, items: unknown[], params: URLSearchParams) => unknown[]) =>
    router
      .route(`${ENTITIES_BASE}/${suffix}`)
      .post((req, res) => {
        const { entity, params } = prepare(req);
        const items = jsonArrayBody(req);
        sendJson(res, 200, { success: true, data: run(entity, items, params) });
      })
      .all(notAllowed(['POST']));

  batchRoute('batch-modify', (entity, items, params) => {
    const options = writeOptions(params);
    const ops = OPERATIONS[entity];
    return runBatch(store, items, rollbackMethod(params), (item, index) => {
      const body = asBatchObject(item);
      const id = body['id'];
      const itemOptions = { ...options, entityIndex: index };
      return id === undefined || id === null
        ? ops.create(store, body, itemOptions)
        : ops.update(store, String(id), body, itemOptions);
    });
  });
  const idBatch = (kind: 'remove' | 'restore') => (entity: EntityPath, items: unknown[], params: URLSearchParams) => {
    const options = writeOptions(params);
    const ops = OPERATIONS[entity];
    return runBatch(store, items, rollbackMethod(params), (item, index) => {
      if (typeof item !== 'string') throw invalidJsonError();
      return ops[kind](store, item, { ...options, entityIndex: index });
    });
  };
  batchRoute('batch-delete', idBatch('remove'));
  batchRoute('batch-restore', idBatch('restore'));

  router
    .route(`${ENTITIES_BASE}/:id`)
    .get((req, res) => {
      const { entity, ctx, params } = prepare(req);
      const read = parseReadOptions(params);
      const id = String(req.params['id']);
      // Without include-deleted a soft-deleted id is 404 (sandbox choice, §8 question 6).
      if (entity === 'Steps') requireStep(store, id, read.includeDeleted);
      else requirePipeline(store, id, read.includeDeleted);
      sendJson(res, 200, { success: true, data: renderOne(entity, id, ctx, read) });
    })
    .patch((req, res) => {
      const { entity, ctx, params } = prepare(req);
      const body = jsonObjectBody(req);
      const record = OPERATIONS[entity].update(store, String(req.params['id']), body, writeOptions(params));
      sendJson(res, 200, { success: true, data: renderOne(entity, record.id, ctx, parseReadOptions(params)) });
    })
    .delete((req, res) => {
      const { entity, params } = prepare(req);
      const record = OPERATIONS[entity].remove(store, String(req.params['id']), writeOptions(params));
      sendJson(res, 200, { success: true, data: record.id });
    })
    .all(notAllowed(['GET', 'PATCH', 'DELETE']));

  return router;
}
