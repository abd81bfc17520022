import type { ProviderInstance, ProviderModule } from '../kit/provider';
import { loadHubSpotContract } from './contract';
import { categoryFor, HubSpotError, hubspotErrorBody } from './errors';
import { hubspotRateLimits } from './rate-limits';
import { type HubSpotConfig, hubspotRouter, OAuthTokens } from './routes';
import { HUBSPOT_SEED, HubSpotStore } from './store';

/** The HubSpot module's own options (the kit's are in `ProviderSandboxOptions`). */
export interface HubSpotOptions {
  /** The private app's access token; default 'sandbox-hubspot-access-token'. */
  accessToken?: string;
  /** The OAuth app's client id; default 'sandbox-hubspot-client-id'. */
  clientId?: string;
  /** The OAuth app's client secret; default 'sandbox-hubspot-client-secret'. */
  clientSecret?: string;
  /** Lifetime of issued access tokens in seconds; default 1800 (HubSpot's `expires_in`). */
  accessTokenSeconds?: number;
}

/** One HubSpot sandbox's state. */
export interface HubSpotInstance extends ProviderInstance {
  config: HubSpotConfig;
  store: HubSpotStore;
  /** Issued OAuth tokens and the count of refresh requests (for tests). */
  tokens: OAuthTokens;
}

/** Defaults of the HubSpot sandbox's credentials (its rate limits: `HUBSPOT_RATE_LIMITS`). */
export const HUBSPOT_DEFAULTS = {
  accessToken: 'sandbox-hubspot-access-token',
  clientId: 'sandbox-hubspot-client-id',
  clientSecret: 'sandbox-hubspot-client-secret',
  authorizationCode: 'sandbox-hubspot-authorization-code',
  accessTokenSeconds: 1800,
} as const;

/**
 * The HubSpot module: CRM Pipelines v3 for deals and tickets of one portal, its OAuth token endpoint, its error
 * bodies, rate-limit headers and 429s (docs/hubspot-sandbox.md), on the kit's server, faults, request log and contract
 * checks. Variables: `HUBSPOT_SANDBOX_PORT` (8300), `_ACCESS_TOKEN`, `_CLIENT_ID`, `_CLIENT_SECRET` (the kit reads
 * `_PORT`, `_FAULTS`, `_LOG_REQUESTS`, `_CONTRACT`, and `_RATE_LIMIT` with the overrides of {@link hubspotRateLimits}).
 */
export const hubspotSandbox: ProviderModule<HubSpotOptions, HubSpotInstance> = {
  name: 'hubspot',
  title: 'HubSpot',
  summary: "an emulator of HubSpot's CRM Pipelines v3 (deal and ticket pipelines and stages), with its OAuth token endpoint",
  defaultPort: 8300,
  envPrefix: 'HUBSPOT_SANDBOX',
  settings: [
    { name: 'HUBSPOT_SANDBOX_ACCESS_TOKEN', default: HUBSPOT_DEFAULTS.accessToken, meaning: "the private app's access token (Bearer)" },
    { name: 'HUBSPOT_SANDBOX_CLIENT_ID', default: HUBSPOT_DEFAULTS.clientId, meaning: "the OAuth app's client id" },
    { name: 'HUBSPOT_SANDBOX_CLIENT_SECRET', default: HUBSPOT_DEFAULTS.clientSecret, meaning: "the OAuth app's client secret" },
  ],
  outsideContract: /^\/oauth\//,
  rateLimits: hubspotRateLimits,
  jsonContentType: 'application/json;charset=utf-8',
  errors: {
    validationStatus: 400,
    fault: (rule) => {
      const [category, message] = categoryFor(rule.status);
      if (rule.missingField === undefined) return { body: hubspotErrorBody(message, category) };
      return {
        body: hubspotErrorBody(`Invalid input: ${rule.missingField} is required`, 'VALIDATION_ERROR', {
          errors: [{ message: `${rule.missingField} is required`, in: rule.missingField, code: 'REQUIRED_FIELD' }],
        }),
      };
    },
    notFound: () => new HubSpotError(404, 'resource not found', 'OBJECT_NOT_FOUND'),
    badRequest: (message) => new HubSpotError(400, message, 'VALIDATION_ERROR'),
    tooLarge: (limit) => new HubSpotError(413, `Request body is larger than ${limit}`, 'VALIDATION_ERROR'),
    internal: () => new HubSpotError(500, 'internal error', 'INTERNAL_ERROR'),
  },
  optionsFromEnv: (env) => ({
    accessToken: env['HUBSPOT_SANDBOX_ACCESS_TOKEN'] || undefined,
    clientId: env['HUBSPOT_SANDBOX_CLIENT_ID'] || undefined,
    clientSecret: env['HUBSPOT_SANDBOX_CLIENT_SECRET'] || undefined,
  }),
  contract: () => loadHubSpotContract(),
  create: (options) => {
    const config: HubSpotConfig = {
      accessToken: options.accessToken ?? HUBSPOT_DEFAULTS.accessToken,
      clientId: options.clientId ?? HUBSPOT_DEFAULTS.clientId,
      clientSecret: options.clientSecret ?? HUBSPOT_DEFAULTS.clientSecret,
      authorizationCode: HUBSPOT_DEFAULTS.authorizationCode,
      accessTokenSeconds: options.accessTokenSeconds ?? HUBSPOT_DEFAULTS.accessTokenSeconds,
    };
    const store = new HubSpotStore();
    const tokens = new OAuthTokens();
    const router = hubspotRouter(store, config, tokens);
    return {
      config,
      store,
      tokens,
      router,
      reset: () => {
        store.reset();
        tokens.clear();
      },
      describe(url) {
        const tokenUrl = `${url}/oauth/v1/token`;
        return {
          integration: 'hubspot',
          context: { access_token: config.accessToken, api_base_url: url },
          details: [
            { label: 'api_base_url', value: url },
            { label: 'access_token', value: config.accessToken, note: "a private app's token (Bearer)" },
            { label: 'OAuth client', value: `${config.clientId} / ${config.clientSecret}`, note: `token endpoint ${tokenUrl}` },
            { label: 'OAuth code', value: config.authorizationCode, note: 'exchange it for tokens (below), then use the OAuth context' },
            { label: `"${HUBSPOT_SEED.dealPipelineLabel}" id`, value: HUBSPOT_SEED.dealPipelineId, note: 'deals (the default object type)' },
            { label: `"${HUBSPOT_SEED.ticketPipelineLabel}" id`, value: HUBSPOT_SEED.ticketPipelineId, note: 'tickets: remote_query[object_type]=tickets' },
          ],
          examples: [
            `curl -H 'Authorization: Bearer ${config.accessToken}' '${url}/crm/v3/pipelines/deals/${HUBSPOT_SEED.dealPipelineId}/stages'`,
            `curl -d 'grant_type=authorization_code&client_id=${config.clientId}&client_secret=${config.clientSecret}&code=${config.authorizationCode}' '${tokenUrl}'` +
              '   # OAuth context: {access_token, refresh_token, expires_at, client_id, client_secret, api_base_url}',
          ],
        };
      },
    };
  },
};
