import { randomBytes, randomUUID } from 'node:crypto';
import { type NextFunction, type Request, type Response, Router } from 'express';
import { sendEmpty, sendJson } from '../kit/http';
import { mountConsentPage, sameText } from '../kit/oauth-consent';
import type { JsonObject } from '../kit/types';
import { HubSpotError, validationError } from './errors';
import { HUBSPOT_OBJECT_TYPES, type HubSpotStore, hubspotTime, type SandboxObjectType, type SandboxPipeline, type SandboxStage } from './store';

/** Credentials, OAuth tokens and rate limits of one HubSpot sandbox. */
export interface HubSpotConfig {
  /** The private app's access token accepted as `Authorization: Bearer`. */
  accessToken: string;
  clientId: string;
  clientSecret: string;
  /** The authorization code `/oauth/v1/token` exchanges (any other is refused). */
  authorizationCode: string;
  /** Lifetime of an issued access token, in seconds (HubSpot: 1800). */
  accessTokenSeconds: number;
}

/** OAuth tokens the sandbox issued. */
export class OAuthTokens {
  readonly access = new Map<string, { expiresAt: number }>();
  readonly refresh = new Set<string>();
  /** Requests to `/oauth/v1/token` with `grant_type=refresh_token` (refused ones included), for tests. */
  refreshRequests = 0;
  /** The `scope` of each consent page shown (`GET /oauth/authorize`), for tests. */
  readonly authorizeScopes: string[] = [];

  /** Issues a new access token (and a refresh token unless one is given), expiring after `seconds` (may be negative). */
  issue(seconds: number, refreshToken?: string): { access_token: string; refresh_token: string; expires_at: string; expires_in: number } {
    const access = `sandbox-hubspot-access-${randomBytes(12).toString('hex')}`;
    const refresh = refreshToken ?? `sandbox-hubspot-refresh-${randomBytes(12).toString('hex')}`;
    const expiresAt = Date.now() + seconds * 1000;
    this.access.set(access, { expiresAt });
    this.refresh.add(refresh);
    return { access_token: access, refresh_token: refresh, expires_at: new Date(expiresAt).toISOString(), expires_in: seconds };
  }

  clear(): void {
    this.access.clear();
    this.refresh.clear();
    this.refreshRequests = 0;
  }
}

/**
 * Who a request is: the private app's token or an unexpired OAuth access token, as `Authorization: Bearer`; anything
 * else is HubSpot's 401 (`INVALID_AUTHENTICATION`, or `EXPIRED_AUTHENTICATION` for an expired OAuth token).
 * @returns the key the rate limits count against (`private-app`, or `oauth-portal` for every OAuth token) and whether
 *   it is the private app
 * @throws HubSpotError 401
 */
export function authenticate(req: Request, config: HubSpotConfig, tokens: OAuthTokens): { key: string; privateApp: boolean } {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
  if (bearer === undefined) {
    throw new HubSpotError(401, 'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview', 'INVALID_AUTHENTICATION');
  }
  if (sameText(bearer, config.accessToken)) return { key: 'private-app', privateApp: true };
  const known = tokens.access.get(bearer);
  if (!known) throw new HubSpotError(401, 'Authentication credentials not found. The access token is not valid.', 'INVALID_AUTHENTICATION');
  if (known.expiresAt <= Date.now()) {
    throw new HubSpotError(401, 'The OAuth token used to make this call expired. Refresh it with the refresh token.', 'EXPIRED_AUTHENTICATION');
  }
  // HubSpot counts an OAuth app's calls per installed portal: every OAuth token of the sandbox shares one window.
  return { key: 'oauth-portal', privateApp: false };
}

/** HubSpot's order: displayOrder, then label. */
const ordered = <T extends { displayOrder: number; label: string }>(items: T[]) => [...items].sort((a, b) => a.displayOrder - b.displayOrder || a.label.localeCompare(b.label));

const stageView = (stage: SandboxStage): JsonObject => {
  const { archivedAt, ...rest } = stage;
  return stage.archived && archivedAt !== undefined ? { ...rest, archivedAt } : { ...rest };
};
const pipelineView = (pipeline: SandboxPipeline): JsonObject => ({ ...pipeline, stages: ordered(pipeline.stages).map(stageView) });

/** Reads a JSON object body or answers HubSpot's 400. */
function jsonBody(req: Request): Record<string, unknown> {
  const text = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
  let value: unknown;
  try {
    value = JSON.parse(text || 'null');
  } catch {
    throw validationError('Invalid input JSON on line 1: the body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw validationError('Invalid input JSON: the body must be an object');
  return value as Record<string, unknown>;
}

/** A deal probability HubSpot accepts: 0.0 to 1.0 in steps of 0.1 (its spec's rule). */
function isProbability(text: string): boolean {
  const number = /^(0(\.\d+)?|1(\.0+)?)$/.test(text) ? Number(text) : NaN;
  return Number.isFinite(number) && Math.abs(number * 10 - Math.round(number * 10)) < 1e-9;
}

/** Checks the fields of a stage input (create, replace or patch) as HubSpot validates them; `required` names the ones that must be there. */
function stageInput(objectType: SandboxObjectType, body: Record<string, unknown>, required: readonly string[]): Partial<SandboxStage> {
  const details: { message: string; in: string; code: string }[] = [];
  const fail = (field: string, message: string) => details.push({ message, in: field, code: 'INVALID_FIELD' });
  for (const field of required) if (body[field] === undefined) fail(field, `${field} is required`);
  const out: Partial<SandboxStage> = {};
  if (body.label !== undefined) {
    if (typeof body.label !== 'string' || body.label.trim() === '') fail('label', 'label must be a non-empty string');
    else out.label = body.label;
  }
  if (body.displayOrder !== undefined) {
    if (typeof body.displayOrder !== 'number' || !Number.isInteger(body.displayOrder)) fail('displayOrder', 'displayOrder must be an integer');
    else out.displayOrder = body.displayOrder;
  }
  if (body.metadata !== undefined) {
    const metadata = body.metadata;
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) fail('metadata', 'metadata must be an object of strings');
    else {
      const entries = Object.entries(metadata as Record<string, unknown>);
      for (const [key, value] of entries) if (typeof value !== 'string') fail(`metadata.${key}`, `metadata.${key} must be a string`);
      const values = Object.fromEntries(entries.map(([key, value]) => [key, String(value)]));
      if (objectType === 'deals') {
        if (values.probability === undefined) fail('metadata.probability', 'metadata.probability is required for deal stages');
        else if (!isProbability(values.probability)) fail('metadata.probability', 'metadata.probability must be between 0.0 and 1.0 in increments of 0.1');
      }
      if (objectType === 'tickets' && values.ticketState !== undefined && !['OPEN', 'CLOSED'].includes(values.ticketState)) {
        fail('metadata.ticketState', 'metadata.ticketState must be OPEN or CLOSED');
      }
      out.metadata = values;
    }
  }
  if (details.length > 0) throw validationError(`Invalid input: ${details.map((d) => d.message).join('; ')}`, details);
  return out;
}

/**
 * HubSpot's CRM Pipelines v3 for deals and tickets (docs/hubspot-sandbox.md) and its OAuth token endpoint, for one
 * portal:
 * - `GET /crm/v3/pipelines/{objectType}`, `GET .../{pipelineId}`, `GET|POST .../{pipelineId}/stages`,
 *   `GET|PATCH|PUT|DELETE .../{pipelineId}/stages/{stageId}` (DELETE archives: 204);
 * - `GET|POST /oauth/authorize`: the consent page (`scope` required, as HubSpot requires it; Allow answers the
 *   configured authorization code to `redirect_uri`);
 * - `POST /oauth/v1/token` (`authorization_code` with the configured code, `refresh_token`), client credentials in the
 *   form as HubSpot takes them;
 * - auth (Bearer: the private app's token or an OAuth token) before every API route (the rate limits, when on, are
 *   counted by the kit before: rate-limits.ts).
 */
export function hubspotRouter(store: HubSpotStore, config: HubSpotConfig, tokens: OAuthTokens): Router {
  const router = Router();

  router.use((_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('X-HubSpot-Correlation-Id', randomUUID());
    next();
  });

  // HubSpot's consent page: as HubSpot, it refuses an authorize URL without `scope`.
  mountConsentPage(router, {
    title: 'HubSpot sandbox',
    question: 'Connect the app {client} to this sandbox portal, with the scopes {scope}?',
    allow: 'Connect app',
    deny: 'Cancel',
    clientId: config.clientId,
    authorizationCode: () => config.authorizationCode,
    requireScope: true,
    onShown: (scope) => tokens.authorizeScopes.push(scope),
  });

  router.post('/oauth/v1/token', (req: Request, res: Response) => {
    const form = new URLSearchParams(Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '');
    const grant = form.get('grant_type');
    if (grant === 'refresh_token') tokens.refreshRequests++;
    const refuse = (status: string, message: string) => sendJson(res, 400, { status, message, correlationId: randomUUID(), requestId: randomUUID() });
    if (!sameText(form.get('client_id') ?? '', config.clientId)) return refuse('BAD_CLIENT_ID', 'missing or unknown client id');
    if (!sameText(form.get('client_secret') ?? '', config.clientSecret)) return refuse('BAD_CLIENT_SECRET', 'missing or invalid client secret');
    let refreshToken: string | undefined;
    if (grant === 'refresh_token') {
      refreshToken = form.get('refresh_token') ?? '';
      if (!tokens.refresh.has(refreshToken)) return refuse('BAD_REFRESH_TOKEN', 'missing or unknown refresh token');
    } else if (grant === 'authorization_code') {
      if (form.get('code') !== config.authorizationCode) return refuse('BAD_AUTH_CODE', 'missing or unknown auth code');
    } else {
      return refuse('BAD_GRANT_TYPE', 'grant_type must be authorization_code or refresh_token');
    }
    // HubSpot's refresh tokens do not rotate: a refresh answers the same refresh token.
    const issued = tokens.issue(config.accessTokenSeconds, refreshToken);
    sendJson(res, 200, { token_type: 'bearer', refresh_token: issued.refresh_token, access_token: issued.access_token, expires_in: issued.expires_in });
  });

  router.use('/crm/v3/pipelines', (req: Request, _res: Response, next: NextFunction) => {
    authenticate(req, config, tokens);
    next();
  });

  const pipelinesOf = (req: Request): SandboxPipeline[] => {
    const objectType = String(req.params['objectType']);
    if (!(HUBSPOT_OBJECT_TYPES as readonly string[]).includes(objectType)) {
      throw validationError(`Unable to infer object type from: ${objectType}`);
    }
    return store.pipelines.get(objectType as SandboxObjectType) ?? [];
  };
  const objectTypeOf = (req: Request) => String(req.params['objectType']) as SandboxObjectType;
  const pipelineOf = (req: Request): SandboxPipeline => {
    const id = String(req.params['pipelineId']);
    const pipeline = pipelinesOf(req).find((p) => p.id === id && !p.archived);
    if (!pipeline) throw new HubSpotError(404, `Unable to find pipeline ${id}`, 'OBJECT_NOT_FOUND');
    return pipeline;
  };
  const stageOf = (req: Request): { pipeline: SandboxPipeline; stage: SandboxStage } => {
    const pipeline = pipelineOf(req);
    const id = String(req.params['stageId']);
    const stage = pipeline.stages.find((s) => s.id === id);
    if (!stage) throw new HubSpotError(404, `Unable to find stage ${id} in pipeline ${pipeline.id}`, 'OBJECT_NOT_FOUND');
    return { pipeline, stage };
  };
  /** A label another stage of the pipeline (not archived) already has: HubSpot's 400. */
  const uniqueLabel = (pipeline: SandboxPipeline, label: string | undefined, except?: SandboxStage) => {
    if (label === undefined) return;
    if (pipeline.stages.some((s) => s !== except && !s.archived && s.label.toLowerCase() === label.toLowerCase())) {
      throw validationError(`A stage with the label ${label} already exists in pipeline ${pipeline.id}`, [{ message: 'label must be unique within the pipeline', in: 'label', code: 'DUPLICATE_LABEL' }]);
    }
  };

  // Lists hold archived stages too, each with archived: true and its archivedAt (docs/hubspot-sandbox.md, decision 2).
  router.get('/crm/v3/pipelines/:objectType', (req, res) => {
    sendJson(res, 200, { results: ordered(pipelinesOf(req).filter((p) => !p.archived)).map(pipelineView) });
  });

  router.get('/crm/v3/pipelines/:objectType/:pipelineId', (req, res) => {
    sendJson(res, 200, pipelineView(pipelineOf(req)));
  });

  router.get('/crm/v3/pipelines/:objectType/:pipelineId/stages', (req, res) => {
    sendJson(res, 200, { results: ordered(pipelineOf(req).stages).map(stageView) });
  });

  router.post('/crm/v3/pipelines/:objectType/:pipelineId/stages', (req, res) => {
    const pipeline = pipelineOf(req);
    const body = jsonBody(req);
    const fields = stageInput(objectTypeOf(req), body, ['label', 'displayOrder', 'metadata']);
    uniqueLabel(pipeline, fields.label);
    let id = store.newId();
    if (body.stageId !== undefined) {
      if (typeof body.stageId !== 'string' || !/^[a-z0-9_-]{1,100}$/.test(body.stageId)) {
        throw validationError('Property name must be lowercase: stageId may hold lowercase letters, digits, _ and -', [{ message: 'stageId must be lowercase', in: 'stageId', code: 'INVALID_FIELD' }]);
      }
      if (store.hasStageId(objectTypeOf(req), body.stageId)) throw validationError(`A stage with the id ${body.stageId} already exists`);
      id = body.stageId;
    }
    const now = hubspotTime(new Date());
    const stage: SandboxStage = {
      id, label: fields.label as string, displayOrder: fields.displayOrder as number, metadata: fields.metadata as Record<string, string>,
      archived: false, createdAt: now, updatedAt: now, writePermissions: 'CRM_PERMISSIONS_ENFORCEMENT',
    };
    pipeline.stages.push(stage);
    pipeline.updatedAt = now;
    sendJson(res, 201, stageView(stage), { Location: `${req.protocol}://${req.headers.host ?? '127.0.0.1'}/crm/v3/pipelines/${objectTypeOf(req)}/${pipeline.id}/stages/${id}` });
  });

  router.get('/crm/v3/pipelines/:objectType/:pipelineId/stages/:stageId', (req, res) => {
    sendJson(res, 200, stageView(stageOf(req).stage));
  });

  // PATCH: `metadata` is required (the spec says so); `archived: false` restores an archived stage, and `archived` in
  // any other call is a 400, as HubSpot documents for pipelines (docs/hubspot-sandbox.md, decision 3).
  router.patch('/crm/v3/pipelines/:objectType/:pipelineId/stages/:stageId', (req, res) => {
    const { pipeline, stage } = stageOf(req);
    const body = jsonBody(req);
    const fields = stageInput(objectTypeOf(req), body, ['metadata']);
    if (body.archived !== undefined) {
      if (body.archived !== false || !stage.archived) {
        throw validationError('archived may only be set to false, to restore an archived stage', [{ message: 'archived is only for restoring', in: 'archived', code: 'INVALID_FIELD' }]);
      }
    }
    uniqueLabel(pipeline, fields.label ?? (body.archived === false ? stage.label : undefined), stage);
    Object.assign(stage, fields, { updatedAt: hubspotTime(new Date()) });
    if (body.archived === false) {
      stage.archived = false;
      delete stage.archivedAt;
    }
    sendJson(res, 200, stageView(stage));
  });

  router.put('/crm/v3/pipelines/:objectType/:pipelineId/stages/:stageId', (req, res) => {
    const { pipeline, stage } = stageOf(req);
    const fields = stageInput(objectTypeOf(req), jsonBody(req), ['label', 'displayOrder', 'metadata']);
    uniqueLabel(pipeline, fields.label, stage);
    Object.assign(stage, fields, { updatedAt: hubspotTime(new Date()) });
    sendJson(res, 200, stageView(stage));
  });

  // DELETE archives: 204, and the stage stays readable and listed with archived: true; an archived stage is a 404.
  router.delete('/crm/v3/pipelines/:objectType/:pipelineId/stages/:stageId', (req, res) => {
    const { stage } = stageOf(req);
    if (stage.archived) throw new HubSpotError(404, `Unable to find stage ${stage.id}: it is archived`, 'OBJECT_NOT_FOUND');
    const now = hubspotTime(new Date());
    Object.assign(stage, { archived: true, archivedAt: now, updatedAt: now });
    sendEmpty(res, 204);
  });

  return router;
}
