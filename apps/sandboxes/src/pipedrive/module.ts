import type { ProviderInstance, ProviderModule } from '../kit/provider';
import { loadPipedriveContract } from './contract';
import { messageFor, PipedriveError, pipedriveErrorBody } from './errors';
import { pipedriveRateLimits } from './rate-limits';
import { OAuthTokens, type PipedriveConfig, pipedriveRouter } from './routes';
import { PIPEDRIVE_SEED, PipedriveStore } from './store';

/** The Pipedrive module's own options (the kit's are in `ProviderSandboxOptions`). */
export interface PipedriveOptions {
  /** The API token accepted in `x-api-token`; default 'sandbox-pipedrive-api-token'. */
  apiToken?: string;
  /** The OAuth app's client id; default 'sandbox-client-id'. */
  clientId?: string;
  /** The OAuth app's client secret; default 'sandbox-client-secret'. */
  clientSecret?: string;
  /** Lifetime of issued access tokens in seconds; default 3600 (Pipedrive's `expires_in`). */
  accessTokenSeconds?: number;
}

/** One Pipedrive sandbox's state. */
export interface PipedriveInstance extends ProviderInstance {
  config: PipedriveConfig;
  store: PipedriveStore;
  /** Issued OAuth tokens and the count of token requests (for tests). */
  tokens: OAuthTokens;
}

/** Defaults of the Pipedrive sandbox's credentials (its rate limits: `PIPEDRIVE_RATE_LIMITS`). */
export const PIPEDRIVE_DEFAULTS = {
  apiToken: 'sandbox-pipedrive-api-token',
  clientId: 'sandbox-client-id',
  clientSecret: 'sandbox-client-secret',
  authorizationCode: 'sandbox-authorization-code',
  accessTokenSeconds: 3600,
} as const;

/**
 * The Pipedrive module: API v2 stages and pipelines of one company, its OAuth token endpoint, its error bodies,
 * rate-limit headers and 429s (docs/pipedrive-sandbox.md), on the kit's server, faults, request log and contract
 * checks. Variables: `PIPEDRIVE_SANDBOX_PORT` (8200), `_API_TOKEN`, `_CLIENT_ID`, `_CLIENT_SECRET` (the kit reads
 * `_PORT`, `_FAULTS`, `_LOG_REQUESTS`, `_CONTRACT`, and `_RATE_LIMIT` with the overrides of {@link pipedriveRateLimits}).
 */
export const pipedriveSandbox: ProviderModule<PipedriveOptions, PipedriveInstance> = {
  name: 'pipedrive',
  title: 'Pipedrive',
  summary: "an emulator of Pipedrive's API v2, stages and pipelines, with its OAuth token endpoint",
  defaultPort: 8200,
  envPrefix: 'PIPEDRIVE_SANDBOX',
  settings: [
    { name: 'PIPEDRIVE_SANDBOX_API_TOKEN', default: PIPEDRIVE_DEFAULTS.apiToken, meaning: 'the API token accepted in x-api-token' },
    { name: 'PIPEDRIVE_SANDBOX_CLIENT_ID', default: PIPEDRIVE_DEFAULTS.clientId, meaning: "the OAuth app's client id" },
    { name: 'PIPEDRIVE_SANDBOX_CLIENT_SECRET', default: PIPEDRIVE_DEFAULTS.clientSecret, meaning: "the OAuth app's client secret" },
  ],
  outsideContract: /^\/oauth\//,
  rateLimits: pipedriveRateLimits,
  jsonContentType: 'application/json; charset=utf-8',
  errors: {
    validationStatus: 400,
    fault: (rule) => ({ body: pipedriveErrorBody(rule.missingField === undefined ? messageFor(rule.status) : `Validation failed: ${rule.missingField}: ${rule.missingField} is required`) }),
    notFound: () => new PipedriveError(404, 'Unknown method .'),
    badRequest: (message) => new PipedriveError(400, message),
    tooLarge: (limit) => new PipedriveError(413, `Request body is larger than ${limit}`),
    internal: () => new PipedriveError(500, messageFor(500)),
  },
  optionsFromEnv: (env) => ({
    apiToken: env['PIPEDRIVE_SANDBOX_API_TOKEN'] || undefined,
    clientId: env['PIPEDRIVE_SANDBOX_CLIENT_ID'] || undefined,
    clientSecret: env['PIPEDRIVE_SANDBOX_CLIENT_SECRET'] || undefined,
  }),
  contract: () => loadPipedriveContract(),
  create: (options) => {
    const config: PipedriveConfig = {
      apiToken: options.apiToken ?? PIPEDRIVE_DEFAULTS.apiToken,
      clientId: options.clientId ?? PIPEDRIVE_DEFAULTS.clientId,
      clientSecret: options.clientSecret ?? PIPEDRIVE_DEFAULTS.clientSecret,
      authorizationCode: PIPEDRIVE_DEFAULTS.authorizationCode,
      accessTokenSeconds: options.accessTokenSeconds ?? PIPEDRIVE_DEFAULTS.accessTokenSeconds,
    };
    const store = new PipedriveStore();
    const tokens = new OAuthTokens();
    const router = pipedriveRouter(store, config, tokens);
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
        const tokenUrl = `${url}/oauth/token`;
        return {
          integration: 'pipedrive',
          context: { api_domain: url, api_token: config.apiToken },
          details: [
            { label: 'api_domain', value: url },
            { label: 'api_token', value: config.apiToken, note: 'x-api-token' },
            { label: 'OAuth client', value: `${config.clientId} / ${config.clientSecret}`, note: `token endpoint ${tokenUrl}` },
            { label: 'OAuth code', value: config.authorizationCode, note: 'exchange it for tokens (below), then use the OAuth context' },
            { label: `"${PIPEDRIVE_SEED.pipelineName}" id`, value: String(PIPEDRIVE_SEED.pipelineId) },
          ],
          examples: [
            `curl -H 'x-api-token: ${config.apiToken}' '${url}/api/v2/stages?pipeline_id=${PIPEDRIVE_SEED.pipelineId}&sort_by=order_nr'`,
            `curl -u '${config.clientId}:${config.clientSecret}' -d 'grant_type=authorization_code&code=${config.authorizationCode}' '${tokenUrl}'` +
              `   # OAuth context: {api_domain, access_token, refresh_token, expires_at, client_id, client_secret, token_url: "${tokenUrl}"}`,
          ],
        };
      },
    };
  },
};
