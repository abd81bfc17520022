import { randomBytes } from 'node:crypto';
import { type NextFunction, type Request, type Response, Router } from 'express';
import { sendJson } from '../kit/http';
import { mountConsentPage, sameText } from '../kit/oauth-consent';
import type { JsonObject } from '../kit/types';
import { PipedriveError } from './errors';
import { type PipedriveStore, pipedriveTime, type SandboxPipeline, type SandboxStage } from './store';

/** Credentials and OAuth settings of one Pipedrive sandbox. */
export interface PipedriveConfig {
  apiToken: string;
  clientId: string;
  clientSecret: string;
  /** The authorization code `/oauth/token` exchanges (any other is refused). */
  authorizationCode: string;
  /** Lifetime of an issued access token, in seconds (Pipedrive: 3600). */
  accessTokenSeconds: number;
}

/** OAuth tokens the sandbox issued. */
export class OAuthTokens {
  readonly access = new Map<string, { expiresAt: number }>();
  readonly refresh = new Set<string>();
  /** Requests to `/oauth/token` with `grant_type=refresh_token` (refused ones included), for tests. */
  refreshRequests = 0;
  /** Requests to `/oauth/token` with `grant_type=authorization_code`. */
  codeRequests = 0;

  /** Issues a new access token (and a refresh token unless one is given), expiring after `seconds` (may be negative). */
  issue(seconds: number, refreshToken?: string): { access_token: string; refresh_token: string; expires_at: string; expires_in: number } {
    const access = `sandbox-access-${randomBytes(12).toString('hex')}`;
    const refresh = refreshToken ?? `sandbox-refresh-${randomBytes(12).toString('hex')}`;
    const expiresAt = Date.now() + seconds * 1000;
    this.access.set(access, { expiresAt });
    this.refresh.add(refresh);
    return { access_token: access, refresh_token: refresh, expires_at: new Date(expiresAt).toISOString(), expires_in: seconds };
  }

  clear(): void {
    this.access.clear();
    this.refresh.clear();
    this.refreshRequests = 0;
    this.codeRequests = 0;
  }
}

/**
 * Who a request is: the API token of `x-api-token` (or the legacy `api_token` query parameter) or an unexpired OAuth
 * access token as `Authorization: Bearer`. Anything else is Pipedrive's 401.
 * @returns the rate-limit key of the caller (`token:<api token>` or `oauth:<access token>`)
 * @throws PipedriveError 401
 */
export function authenticate(req: Request, config: PipedriveConfig, tokens: OAuthTokens): string {
  const header = req.headers['x-api-token'];
  const apiToken = (Array.isArray(header) ? header[0] : header) ?? new URLSearchParams(req.originalUrl.split('?')[1] ?? '').get('api_token') ?? undefined;
  if (apiToken !== undefined) {
    if (sameText(apiToken, config.apiToken)) return `token:${apiToken}`;
    throw new PipedriveError(401, 'unauthorized access');
  }
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
  if (bearer !== undefined) {
    const known = tokens.access.get(bearer);
    if (!known) throw new PipedriveError(401, 'Invalid token: access token is invalid');
    if (known.expiresAt <= Date.now()) throw new PipedriveError(401, 'Invalid token: access token is expired');
    return `oauth:${bearer}`;
  }
  throw new PipedriveError(401, 'unauthorized access');
}

const stageView = (stage: SandboxStage): JsonObject => ({ ...stage });
const pipelineView = (pipeline: SandboxPipeline): JsonObject => ({ ...pipeline });

/** An integer query or body value, or a 400 naming it. */
function integer(value: unknown, name: string, { min }: { min?: number } = {}): number {
  const number = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isSafeInteger(number) || (min !== undefined && number < min)) {
    throw new PipedriveError(400, `Validation failed: ${name}: Parameter '${name}' must be an integer${min !== undefined ? ` >= ${min}` : ''}`);
  }
  return number;
}

/** Pipedrive's opaque cursor, here the position after which the next page starts (base64url JSON). */
const encodeCursor = (offset: number) => Buffer.from(JSON.stringify({ offset }), 'utf8').toString('base64url');
function decodeCursor(text: string): number {
  try {
    const value: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    const offset = (value as { offset?: unknown }).offset;
    if (typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0) return offset;
  } catch {
    // falls through
  }
  throw new PipedriveError(400, 'Validation failed: cursor: Invalid cursor');
}

/** One page of a sorted list, in Pipedrive's envelope `{ success, data, additional_data: { next_cursor } }`. */
function page<T extends { id: number }>(records: T[], query: URLSearchParams, sortable: readonly string[], view: (record: T) => JsonObject): JsonObject {
  const sortBy = query.get('sort_by') ?? 'id';
  if (!sortable.includes(sortBy)) throw new PipedriveError(400, `Validation failed: sort_by: Parameter 'sort_by' must be one of: ${sortable.join(', ')}`);
  const direction = query.get('sort_direction') ?? 'asc';
  if (direction !== 'asc' && direction !== 'desc') throw new PipedriveError(400, "Validation failed: sort_direction: Parameter 'sort_direction' must be one of: asc, desc");
  const limitText = query.get('limit');
  const limit = limitText === null ? 100 : integer(limitText, 'limit', { min: 1 });
  if (limit > 500) throw new PipedriveError(400, "Validation failed: limit: Parameter 'limit' must be <= 500");
  const cursor = query.get('cursor');
  const offset = cursor === null || cursor === '' ? 0 : decodeCursor(cursor);
  const key = (record: T) => (record as unknown as Record<string, string | number>)[sortBy] as string | number;
  const sorted = [...records].sort((a, b) => {
    const x = key(a);
    const y = key(b);
    const order = x < y ? -1 : x > y ? 1 : a.id - b.id;
    return direction === 'asc' ? order : -order;
  });
  const slice = sorted.slice(offset, offset + limit);
  const next = offset + limit < sorted.length ? encodeCursor(offset + limit) : null;
  return { success: true, data: slice.map(view), additional_data: { next_cursor: next } };
}

/** Reads a JSON object body or answers Pipedrive's 400. */
function jsonBody(req: Request): Record<string, unknown> {
  const text = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
  let value: unknown;
  try {
    value = JSON.parse(text || 'null');
  } catch {
    throw new PipedriveError(400, 'Invalid JSON body');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new PipedriveError(400, 'Invalid JSON body');
  return value as Record<string, unknown>;
}

/** The optional stage fields of a create or update body, checked as Pipedrive does since 2025-02-20 (§2.3). */
function stageFields(body: Record<string, unknown>, store: PipedriveStore): Partial<SandboxStage> {
  const out: Partial<SandboxStage> = {};
  if (body.name !== undefined) {
    if (typeof body.name !== 'string' || body.name.trim() === '') throw new PipedriveError(400, 'Validation failed: name: Name must not be empty');
    out.name = body.name.trim();
  }
  if (body.pipeline_id !== undefined) {
    const id = integer(body.pipeline_id, 'pipeline_id', { min: 1 });
    const pipeline = store.pipelines.get(id);
    if (!pipeline || pipeline.is_deleted) throw new PipedriveError(400, `Validation failed: pipeline_id: Pipeline with id ${id} does not exist`);
    out.pipeline_id = id;
  }
  if (body.deal_probability !== undefined) {
    const probability = integer(body.deal_probability, 'deal_probability', { min: 0 });
    if (probability > 100) throw new PipedriveError(400, 'Validation failed: deal_probability: Deal probability must be between 0 and 100');
    out.deal_probability = probability;
  }
  if (body.is_deal_rot_enabled !== undefined) {
    if (typeof body.is_deal_rot_enabled !== 'boolean') throw new PipedriveError(400, 'Validation failed: is_deal_rot_enabled: must be a boolean');
    out.is_deal_rot_enabled = body.is_deal_rot_enabled;
  }
  if (body.days_to_rotten !== undefined) out.days_to_rotten = body.days_to_rotten === null ? null : integer(body.days_to_rotten, 'days_to_rotten', { min: 0 });
  return out;
}

/** The stage of a path id: 404 when it is not a number or unknown; deleted ones too with `allowDeleted` false. */
function stageOf(store: PipedriveStore, idText: string, allowDeleted: boolean): SandboxStage {
  const id = /^\d+$/.test(idText) ? Number(idText) : NaN;
  const stage = store.stages.get(id);
  if (!stage || (stage.is_deleted && !allowDeleted)) throw new PipedriveError(404, 'Stage not found');
  return stage;
}

/**
 * Pipedrive's API v2 stages and pipelines (pipedrive-api.md §2.2) and its OAuth token endpoint, for one company:
 * - `GET|POST /api/v2/stages`, `GET|PATCH|DELETE /api/v2/stages/:id`, `GET /api/v2/pipelines`, `GET /api/v2/pipelines/:id`;
 * - `GET|POST /oauth/authorize`: the consent page (Allow answers the configured authorization code to `redirect_uri`);
 * - `POST /oauth/token` (`authorization_code` with the configured code, `refresh_token`), client credentials as Basic;
 * - auth (`x-api-token` or Bearer) before every API route (the rate limits, when on, are counted by the kit before:
 *   rate-limits.ts).
 */
export function pipedriveRouter(store: PipedriveStore, config: PipedriveConfig, tokens: OAuthTokens): Router {
  const router = Router();

  // Pipedrive's consent page: Allow answers the configured authorization code; Pipedrive grants the app's own scopes.
  mountConsentPage(router, {
    title: 'Pipedrive sandbox',
    question: "Allow the app {client} to access this sandbox company's data?",
    allow: 'Allow and install',
    deny: 'Deny',
    clientId: config.clientId,
    authorizationCode: () => config.authorizationCode,
    requireScope: false,
  });

  router.post('/oauth/token', (req: Request, res: Response) => {
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    const form = new URLSearchParams(Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '');
    const [id, secret] = basic ? Buffer.from(basic, 'base64').toString('utf8').split(/:(.*)/s) : [form.get('client_id') ?? '', form.get('client_secret') ?? ''];
    const grant = form.get('grant_type');
    if (grant === 'refresh_token') tokens.refreshRequests++;
    if (grant === 'authorization_code') tokens.codeRequests++;
    if (!sameText(id ?? '', config.clientId) || !sameText(secret ?? '', config.clientSecret)) {
      return sendJson(res, 401, { success: false, error: 'invalid_client', error_description: 'Invalid client credentials' });
    }
    let refreshToken: string | undefined;
    if (grant === 'refresh_token') {
      refreshToken = form.get('refresh_token') ?? '';
      if (!tokens.refresh.has(refreshToken)) return sendJson(res, 400, { success: false, error: 'invalid_grant', error_description: 'Invalid refresh token' });
    } else if (grant === 'authorization_code') {
      if (form.get('code') !== config.authorizationCode) return sendJson(res, 400, { success: false, error: 'invalid_grant', error_description: 'Invalid authorization code' });
    } else {
      return sendJson(res, 400, { success: false, error: 'unsupported_grant_type', error_description: 'grant_type must be authorization_code or refresh_token' });
    }
    const issued = tokens.issue(config.accessTokenSeconds, refreshToken);
    const apiDomain = `${req.protocol}://${req.headers.host ?? '127.0.0.1'}`;
    sendJson(res, 200, {
      access_token: issued.access_token,
      token_type: 'Bearer',
      refresh_token: issued.refresh_token,
      scope: 'base,deals:full,admin',
      expires_in: issued.expires_in,
      api_domain: apiDomain,
    });
  });

  router.use('/api/v2', (req: Request, _res: Response, next: NextFunction) => {
    authenticate(req, config, tokens);
    next();
  });

  const query = (req: Request) => new URLSearchParams(req.originalUrl.split('?')[1] ?? '');

  router.get('/api/v2/stages', (req, res) => {
    const q = query(req);
    const pipelineText = q.get('pipeline_id');
    const pipelineId = pipelineText === null ? undefined : integer(pipelineText, 'pipeline_id', { min: 1 });
    // Deleted stages are left out of lists (docs/pipedrive-sandbox.md, decision 3).
    const stages = [...store.stages.values()].filter((s) => !s.is_deleted && (pipelineId === undefined || s.pipeline_id === pipelineId));
    sendJson(res, 200, page(stages, q, ['id', 'update_time', 'add_time', 'order_nr'], stageView));
  });

  router.post('/api/v2/stages', (req, res) => {
    const body = jsonBody(req);
    if (body.name === undefined) throw new PipedriveError(400, 'Validation failed: name: Name is required');
    if (body.pipeline_id === undefined) throw new PipedriveError(400, 'Validation failed: pipeline_id: Pipeline id is required');
    const fields = stageFields(body, store);
    const now = pipedriveTime(new Date());
    const pipelineId = fields.pipeline_id as number;
    const stage: SandboxStage = {
      id: store.newId(), order_nr: store.nextOrder(pipelineId), name: fields.name as string, is_deleted: false,
      deal_probability: fields.deal_probability ?? 100, pipeline_id: pipelineId, is_deal_rot_enabled: fields.is_deal_rot_enabled ?? false,
      days_to_rotten: fields.days_to_rotten ?? null, add_time: now, update_time: now,
    };
    store.stages.set(stage.id, stage);
    // 200, as the document declares (docs/pipedrive-sandbox.md, decision 1).
    sendJson(res, 200, { success: true, data: stageView(stage) });
  });

  router.get('/api/v2/stages/:id', (req, res) => {
    sendJson(res, 200, { success: true, data: stageView(stageOf(store, String(req.params['id']), true)) });
  });

  router.patch('/api/v2/stages/:id', (req, res) => {
    const stage = stageOf(store, String(req.params['id']), false);
    const fields = stageFields(jsonBody(req), store);
    if (fields.pipeline_id !== undefined && fields.pipeline_id !== stage.pipeline_id) stage.order_nr = store.nextOrder(fields.pipeline_id);
    Object.assign(stage, fields, { update_time: pipedriveTime(new Date()) });
    sendJson(res, 200, { success: true, data: stageView(stage) });
  });

  router.delete('/api/v2/stages/:id', (req, res) => {
    const stage = stageOf(store, String(req.params['id']), false);
    stage.is_deleted = true;
    stage.update_time = pipedriveTime(new Date());
    sendJson(res, 200, { success: true, data: { id: stage.id } });
  });

  router.get('/api/v2/pipelines', (req, res) => {
    const pipelines = [...store.pipelines.values()].filter((p) => !p.is_deleted);
    sendJson(res, 200, page(pipelines, query(req), ['id', 'update_time', 'add_time'], pipelineView));
  });

  router.get('/api/v2/pipelines/:id', (req, res) => {
    const idText = String(req.params['id']);
    const pipeline = /^\d+$/.test(idText) ? store.pipelines.get(Number(idText)) : undefined;
    if (!pipeline) throw new PipedriveError(404, 'Pipeline not found');
    sendJson(res, 200, { success: true, data: pipelineView(pipeline) });
  });

  return router;
}
