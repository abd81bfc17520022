import 'reflect-metadata';
import {
  type Connector,
  type ConnectorResource,
  type HttpTransport,
  isJsonObject,
  type Logger,
  type OAuthConsentDeclaration,
  type OAuthRefreshDeclaration,
  type ProxyHandler,
  TOKENS,
} from '@unicrm/model';
import { inject, injectable } from 'tsyringe';
import { HubSpotClient } from './client';
import { HUBSPOT_API_BASE_URL, HUBSPOT_SECRET_KEYS, HUBSPOT_TOKEN_PATH, type HubSpotContext, HubSpotTokenContextSchema, isOAuthContext, parseHubSpotContext, tokenUrl } from './context';
import { hubspotPipelines } from './pipelines';
import { hubspotProxy } from './proxy';
import { hubspotStages } from './stages';

/**
 * How HubSpot's OAuth tokens are refreshed (core does it): `POST {token_url}` (default `{api_base_url}/oauth/v1/token`)
 * with the form `grant_type=refresh_token&client_id=...&client_secret=...&refresh_token=...` (HubSpot takes the
 * client credentials in the body); the answer's `access_token`, `refresh_token` (when given; HubSpot's do not
 * rotate) and `expires_in` (seconds, default 1800: HubSpot's tokens live 30 minutes) replace the context's.
 */
export const HUBSPOT_OAUTH: OAuthRefreshDeclaration = {
  tokens(context) {
    if (!isOAuthContext(context)) return undefined;
    const expiresAt = new Date(String(context.expires_at));
    return { accessToken: String(context.access_token), expiresAt: Number.isNaN(expiresAt.getTime()) ? undefined : expiresAt };
  },
  refreshRequest(context) {
    return {
      url: tokenUrl(context),
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        client_id: String(context.client_id),
        client_secret: String(context.client_secret),
        refresh_token: String(context.refresh_token),
      }).toString(),
    };
  },
  applyRefresh(context, answer, now) {
    if (!isJsonObject(answer) || typeof answer.access_token !== 'string' || answer.access_token === '') throw new Error('no access_token');
    const seconds = typeof answer.expires_in === 'number' && answer.expires_in > 0 ? answer.expires_in : 1800;
    return {
      ...context,
      access_token: answer.access_token,
      refresh_token: typeof answer.refresh_token === 'string' && answer.refresh_token !== '' ? answer.refresh_token : context.refresh_token,
      expires_at: new Date(now.getTime() + seconds * 1000).toISOString(),
    };
  },
};

/** HubSpot's consent page (hubspot-api.md §1.4). */
export const HUBSPOT_AUTHORIZE_URL = 'https://app.hubspot.com/oauth/authorize';

/**
 * The scopes asked for on HubSpot's consent page: what the stage methods need (deal pipelines' schema read and write;
 * `tickets` for ticket pipelines). HubSpot requires `scope` on the authorize URL; an app may ask for others with
 * `UNICRM_OAUTH_HUBSPOT_SCOPES`.
 */
export const HUBSPOT_SCOPES: readonly string[] = ['crm.schemas.deals.read', 'crm.schemas.deals.write', 'tickets'];

/**
 * HubSpot's OAuth consent flow on the connect page (issue 17's port): the browser goes to HubSpot's authorize page with
 * {@link HUBSPOT_SCOPES}; the code is exchanged at `/oauth/v1/token` with the client credentials in the form body (as
 * the refresh, {@link HUBSPOT_OAUTH}). The account's `api_base_url` is the token endpoint's origin when it is not
 * HubSpot's (a sandbox serves both), so the API calls go where the tokens came from.
 */
export const HUBSPOT_CONSENT: OAuthConsentDeclaration = {
  authorizeUrl: HUBSPOT_AUTHORIZE_URL,
  tokenUrl: `${HUBSPOT_API_BASE_URL}${HUBSPOT_TOKEN_PATH}`,
  scopes: HUBSPOT_SCOPES,
  codeRequest(code, redirectUri, app) {
    return {
      url: app.tokenUrl,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'authorization_code', client_id: app.clientId, client_secret: app.clientSecret, redirect_uri: redirectUri, code }).toString(),
    };
  },
  contextOf(answer, app, now) {
    if (!isJsonObject(answer) || typeof answer.access_token !== 'string' || answer.access_token === '') throw new Error('no access_token');
    if (typeof answer.refresh_token !== 'string' || answer.refresh_token === '') throw new Error('no refresh_token');
    const seconds = typeof answer.expires_in === 'number' && answer.expires_in > 0 ? answer.expires_in : 1800;
    const origin = new URL(app.tokenUrl).origin;
    return {
      access_token: answer.access_token,
      refresh_token: answer.refresh_token,
      expires_at: new Date(now.getTime() + seconds * 1000).toISOString(),
      client_id: app.clientId,
      client_secret: app.clientSecret,
      ...(origin !== HUBSPOT_API_BASE_URL && { api_base_url: origin }),
    };
  },
};

/**
 * The HubSpot CRM connector (integration `hubspot`), on HubSpot's CRM Pipelines API v3. An account's context is
 * `{ access_token[, api_base_url] }` (a private app's token) or `{ access_token, refresh_token, expires_at, client_id,
 * client_secret[, api_base_url][, token_url] }` (OAuth, refreshed by core with {@link HUBSPOT_OAUTH}). It declares
 * `crm/stages` (list, get, create, update, delete = archive), `crm/pipelines` (list, get) and the proxy, for deal
 * pipelines or the object type of `remote_query[object_type]`. Registered under `TOKENS.Connector`.
 */
@injectable()
export class HubSpotConnector implements Connector {
  readonly integration = 'hubspot';
  readonly displayName = 'HubSpot';
  readonly category = 'crm';
  readonly secretContextKeys = HUBSPOT_SECRET_KEYS;
  /** Where the secrets go: the API (`api_base_url`) and the token endpoint (`token_url`). */
  readonly credentialBoundContextKeys = ['api_base_url', 'token_url'] as const;
  readonly resources: Readonly<Record<string, ConnectorResource>>;
  readonly proxy: ProxyHandler;
  readonly oauth = HUBSPOT_OAUTH;
  /**
   * The connect page's form (docs/connect.md): a private app's access token, and the API address for a test server.
   * With an OAuth app configured (`UNICRM_OAUTH_HUBSPOT_*`), the page offers HubSpot's consent flow too.
   */
  readonly contextSchema = HubSpotTokenContextSchema;
  readonly oauthConsent = HUBSPOT_CONSENT;
  /** One client per account context object (a refreshed or changed account is a new object, so a new client). */
  private readonly clients = new WeakMap<object, HubSpotClient>();

  constructor(
    @inject(TOKENS.HttpTransport) private readonly transport: HttpTransport,
    @inject(TOKENS.Logger) logger: Logger,
  ) {
    const clientOf = (context: Record<string, unknown>) => this.client(context);
    this.resources = {
      'crm/stages': hubspotStages(clientOf, logger),
      'crm/pipelines': hubspotPipelines(clientOf),
    };
    this.proxy = hubspotProxy(clientOf);
  }

  private client(context: Record<string, unknown>): HubSpotClient {
    let client = this.clients.get(context);
    if (!client) {
      client = new HubSpotClient(this.transport, context as unknown as HubSpotContext);
      this.clients.set(context, client);
    }
    return client;
  }

  /**
   * Validates a HubSpot context (one of the two modes; `api_base_url` and `token_url` through the outbound policy).
   * @throws UnicrmError 400 with failures under `context.`
   */
  parseContext(context: unknown): Record<string, unknown> {
    return parseHubSpotContext(context) as unknown as Record<string, unknown>;
  }

  /**
   * One cheap authenticated call, `GET /crm/v3/pipelines/deals`: proves the base URL and the token (which needs a deal
   * read scope, e.g. `crm.objects.deals.read` or `crm.schemas.deals.read`).
   * @throws UnicrmError: HubSpot's 401 for a rejected token, 403 for a missing scope, other remote errors, 502, 504
   */
  async verifyCredentials(context: Record<string, unknown>, signal?: AbortSignal): Promise<void> {
    await new HubSpotClient(this.transport, context as unknown as HubSpotContext).pipelines('deals', {}, signal);
  }
}
