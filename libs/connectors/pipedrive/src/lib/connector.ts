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
import { PipedriveClient, PipelineNameCache } from './client';
import { isOAuthContext, parsePipedriveContext, PIPEDRIVE_SECRET_KEYS, PIPEDRIVE_TOKEN_URL, type PipedriveContext, PipedriveTokenContextSchema } from './context';
import { pipedrivePipelines } from './pipelines';
import { pipedriveProxy } from './proxy';
import { pipedriveStages } from './stages';

/**
 * How Pipedrive's OAuth tokens are refreshed (core does it; pipedrive-api.md §2.5): `POST {token_url}` (default
 * `https://oauth.pipedrive.com/oauth/token`) with `grant_type=refresh_token&refresh_token=...`, the app's client id and
 * secret as HTTP Basic; the answer's `access_token`, `refresh_token` (when given), `expires_in` (seconds) and
 * `api_domain` (when given) replace the context's.
 */
export const PIPEDRIVE_OAUTH: OAuthRefreshDeclaration = {
  tokens(context) {
    if (!isOAuthContext(context)) return undefined;
    const expiresAt = new Date(String(context.expires_at));
    return { accessToken: String(context.access_token), expiresAt: Number.isNaN(expiresAt.getTime()) ? undefined : expiresAt };
  },
  refreshRequest(context) {
    const basic = Buffer.from(`${String(context.client_id)}:${String(context.client_secret)}`, 'utf8').toString('base64');
    return {
      url: typeof context.token_url === 'string' ? context.token_url : PIPEDRIVE_TOKEN_URL,
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: String(context.refresh_token) }).toString(),
    };
  },
  applyRefresh(context, answer, now) {
    if (!isJsonObject(answer) || typeof answer.access_token !== 'string' || answer.access_token === '') throw new Error('no access_token');
    const seconds = typeof answer.expires_in === 'number' && answer.expires_in > 0 ? answer.expires_in : 3600;
    return {
      ...context,
      access_token: answer.access_token,
      refresh_token: typeof answer.refresh_token === 'string' && answer.refresh_token !== '' ? answer.refresh_token : context.refresh_token,
      expires_at: new Date(now.getTime() + seconds * 1000).toISOString(),
      api_domain: typeof answer.api_domain === 'string' && answer.api_domain !== '' ? answer.api_domain : context.api_domain,
    };
  },
};

/** Pipedrive's authorization page (pipedrive-api.md §2.5). */
export const PIPEDRIVE_AUTHORIZE_URL = 'https://oauth.pipedrive.com/oauth/authorize';

/**
 * Pipedrive's consent flow on the connect page: the authorization code is exchanged at the token endpoint with the
 * app's credentials as HTTP Basic; the answer's `api_domain` is the company's API address.
 */
export const PIPEDRIVE_CONSENT: OAuthConsentDeclaration = {
  authorizeUrl: PIPEDRIVE_AUTHORIZE_URL,
  tokenUrl: PIPEDRIVE_TOKEN_URL,
  codeRequest(code, redirectUri, app) {
    const basic = Buffer.from(`${app.clientId}:${app.clientSecret}`, 'utf8').toString('base64');
    return {
      url: app.tokenUrl,
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri }).toString(),
    };
  },
  contextOf(answer, app, now) {
    if (!isJsonObject(answer) || typeof answer.access_token !== 'string' || answer.access_token === '') throw new Error('no access_token');
    if (typeof answer.refresh_token !== 'string' || answer.refresh_token === '') throw new Error('no refresh_token');
    if (typeof answer.api_domain !== 'string' || answer.api_domain === '') throw new Error('no api_domain');
    const seconds = typeof answer.expires_in === 'number' && answer.expires_in > 0 ? answer.expires_in : 3600;
    return {
      api_domain: answer.api_domain,
      access_token: answer.access_token,
      refresh_token: answer.refresh_token,
      expires_at: new Date(now.getTime() + seconds * 1000).toISOString(),
      client_id: app.clientId,
      client_secret: app.clientSecret,
      ...(app.tokenUrl !== PIPEDRIVE_TOKEN_URL && { token_url: app.tokenUrl }),
    };
  },
};

/**
 * The Pipedrive CRM connector (integration `pipedrive`), on Pipedrive's API v2. An account's context is
 * `{ api_domain, api_token }` (the API token in `x-api-token`) or `{ api_domain, access_token, refresh_token,
 * expires_at, client_id, client_secret[, token_url] }` (OAuth: Bearer, refreshed by core with {@link PIPEDRIVE_OAUTH}).
 * It declares `crm/stages` (list, get, create, update, delete), `crm/pipelines` (list, get) and the proxy to API v2.
 * Registered under `TOKENS.Connector`.
 */
@injectable()
export class PipedriveConnector implements Connector {
  readonly integration = 'pipedrive';
  readonly displayName = 'Pipedrive';
  readonly category = 'crm';
  readonly secretContextKeys = PIPEDRIVE_SECRET_KEYS;
  /** Where the secrets go: the API (`api_domain`) and the token endpoint (`token_url`). */
  readonly credentialBoundContextKeys = ['api_domain', 'token_url'] as const;
  /** The connect page's form (docs/connect.md): the API-token mode (company domain and personal API token). */
  readonly contextSchema = PipedriveTokenContextSchema;
  readonly resources: Readonly<Record<string, ConnectorResource>>;
  readonly proxy: ProxyHandler;
  readonly oauth = PIPEDRIVE_OAUTH;
  /** The connect page's "Continue with Pipedrive" (docs/connect.md "OAuth"), when an OAuth app is configured. */
  readonly oauthConsent = PIPEDRIVE_CONSENT;
  /** Pipeline names of every company, shared by the stage methods (bounded, one minute). */
  private readonly pipelineNames = new PipelineNameCache();
  /** One client per account context object (a refreshed or changed account is a new object, so a new client). */
  private readonly clients = new WeakMap<object, PipedriveClient>();

  constructor(
    @inject(TOKENS.HttpTransport) private readonly transport: HttpTransport,
    @inject(TOKENS.Logger) logger: Logger,
  ) {
    const clientOf = (context: Record<string, unknown>) => this.client(context);
    this.resources = {
      'crm/stages': pipedriveStages(clientOf, logger),
      'crm/pipelines': pipedrivePipelines(clientOf),
    };
    this.proxy = pipedriveProxy(clientOf);
  }

  private client(context: Record<string, unknown>): PipedriveClient {
    let client = this.clients.get(context);
    if (!client) {
      client = new PipedriveClient(this.transport, context as unknown as PipedriveContext, this.pipelineNames);
      this.clients.set(context, client);
    }
    return client;
  }

  /**
   * Validates a Pipedrive context (one of the two modes; `api_domain` and `token_url` through the outbound policy).
   * @throws UnicrmError 400 with failures under `context.`
   */
  parseContext(context: unknown): Record<string, unknown> {
    return parsePipedriveContext(context) as unknown as Record<string, unknown>;
  }

  /**
   * One cheap authenticated call, `GET /api/v2/pipelines?limit=1` (1 token page): proves the domain and credentials.
   * @throws UnicrmError: Pipedrive's 401 for a rejected token, other remote errors, 502, 504
   */
  async verifyCredentials(context: Record<string, unknown>, signal?: AbortSignal): Promise<void> {
    await new PipedriveClient(this.transport, context as unknown as PipedriveContext).list('pipelines', { limit: 1 }, signal);
  }
}
