import { checkOutboundUrl, isJsonObject, UnicrmError, zodFailures } from '@unicrm/model';
import { z } from 'zod';

/** HubSpot's API base URL: every CRM Pipelines v3 call goes to `{api_base_url}/crm/v3/pipelines/...`. */
export const HUBSPOT_API_BASE_URL = 'https://api.hubapi.com';
/** HubSpot's OAuth token endpoint, on the API's host: `{api_base_url}/oauth/v1/token`. */
export const HUBSPOT_TOKEN_PATH = '/oauth/v1/token';

const EXPIRES_AT = 'must be an RFC 3339 date-time with a zone, e.g. 2026-01-01T12:00:00Z: when access_token expires';
const required = (what: string) => ({ error: `is required: ${what} (a non-empty string)` });

const ApiBaseUrlSchema = z
  .url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL, e.g. https://api.hubapi.com' })
  .describe("HubSpot's API base URL; default https://api.hubapi.com (a sandbox's URL locally)")
  .meta({ title: 'API address (optional)', description: 'Leave it empty for HubSpot (https://api.hubapi.com); a test server\'s address otherwise.' })
  .optional();

/**
 * A HubSpot account authenticated with a private app's access token (static; `Authorization: Bearer`). The token
 * needs `crm.schemas.deals.read`/`crm.schemas.deals.write` for deal stages, `tickets` for ticket stages.
 */
export const HubSpotTokenContextSchema = z
  .strictObject({
    access_token: z
      .string(required("the private app's access token"))
      .min(1, required("the private app's access token"))
      .describe("A private app's access token (Bearer); secret")
      .meta({
        title: 'Private app access token',
        description: 'In HubSpot: Settings → Integrations → Private Apps → your app → Auth → Access token (it needs the CRM schema scopes of deals).',
      }),
    api_base_url: ApiBaseUrlSchema,
  })
  .meta({ id: 'HubSpotTokenContext' });

/**
 * A HubSpot account authenticated with an OAuth 2 grant of a public app: the access token is sent as `Authorization:
 * Bearer`; core refreshes it at HubSpot's token endpoint (`{api_base_url}/oauth/v1/token`, client id and secret in the
 * form body as HubSpot documents) before `expires_at` and once after a 401, and stores the new tokens sealed.
 */
export const HubSpotOAuthContextSchema = z
  .strictObject({
    access_token: z.string(required('the OAuth access token')).min(1, required('the OAuth access token')).describe('OAuth access token (Bearer); secret'),
    refresh_token: z.string(required('the OAuth refresh token')).min(1, required('the OAuth refresh token')).describe('OAuth refresh token; secret'),
    expires_at: z.iso.datetime({ offset: true, error: EXPIRES_AT }).describe('When access_token expires (RFC 3339); unicrm refreshes before it'),
    client_id: z.string(required("the OAuth app's client id")).min(1, required("the OAuth app's client id")).describe("The OAuth app's client id"),
    client_secret: z.string(required("the OAuth app's client secret")).min(1, required("the OAuth app's client secret")).describe("The OAuth app's client secret; secret"),
    api_base_url: ApiBaseUrlSchema,
    token_url: z
      .url({ protocol: /^https?$/, error: 'must be an absolute URL' })
      .optional()
      .describe("HubSpot's token endpoint; default {api_base_url}/oauth/v1/token"),
  })
  .meta({ id: 'HubSpotOAuthContext' });

export type HubSpotTokenContext = z.infer<typeof HubSpotTokenContextSchema>;
export type HubSpotOAuthContext = z.infer<typeof HubSpotOAuthContextSchema>;
/** An account context of the `hubspot` integration: one of the two auth modes. */
export type HubSpotContext = HubSpotTokenContext | HubSpotOAuthContext;

/** The context keys that are secrets, in either mode. */
export const HUBSPOT_SECRET_KEYS = ['access_token', 'refresh_token', 'client_secret'] as const;

/** The keys only an OAuth context has (any of them makes a context an OAuth one). */
const OAUTH_ONLY_KEYS = ['refresh_token', 'expires_at', 'client_id', 'client_secret', 'token_url'] as const;

/** True for an OAuth context (it has a `refresh_token`); a private app's context has only `access_token`. */
export function isOAuthContext(context: HubSpotContext | Record<string, unknown>): context is HubSpotOAuthContext {
  return typeof (context as Record<string, unknown>).refresh_token === 'string';
}

/** The API base URL of a context, without a trailing slash. */
export function apiBaseUrl(context: HubSpotContext | Record<string, unknown>): string {
  const value = (context as Record<string, unknown>).api_base_url;
  return (typeof value === 'string' && value !== '' ? value : HUBSPOT_API_BASE_URL).replace(/\/+$/, '');
}

/** The token endpoint of an OAuth context: `token_url`, else `{api_base_url}/oauth/v1/token`. */
export function tokenUrl(context: Record<string, unknown>): string {
  return typeof context.token_url === 'string' && context.token_url !== '' ? context.token_url : `${apiBaseUrl(context)}${HUBSPOT_TOKEN_PATH}`;
}

/**
 * Validates a HubSpot context and returns it normalised: keys set to `null` are dropped first (so a PATCH can switch
 * modes), then it is a private app's `{ access_token[, api_base_url] }` when it has none of the OAuth-only keys, else
 * an OAuth context with all of them; `api_base_url` and `token_url` must pass the outbound policy
 * ({@link checkOutboundUrl}).
 * @throws UnicrmError 400 with failures under `context.`
 */
export function parseHubSpotContext(context: unknown): HubSpotContext {
  if (!isJsonObject(context)) throw UnicrmError.validation([{ path: 'context', message: 'must be a JSON object' }]);
  const present = Object.fromEntries(Object.entries(context).filter(([, value]) => value !== null));
  const oauth = OAUTH_ONLY_KEYS.some((key) => key in present);
  const result = (oauth ? HubSpotOAuthContextSchema : HubSpotTokenContextSchema).safeParse(present);
  if (!result.success) throw UnicrmError.validation(zodFailures(result.error, 'context'));
  const parsed: Record<string, unknown> = { ...result.data };
  for (const key of ['api_base_url', 'token_url'] as const) {
    const value = parsed[key];
    if (typeof value !== 'string') continue;
    try {
      parsed[key] = checkOutboundUrl(value, { example: HUBSPOT_API_BASE_URL });
    } catch (error) {
      throw UnicrmError.validation([{ path: `context.${key}`, message: (error as Error).message }]);
    }
  }
  return parsed as HubSpotContext;
}
