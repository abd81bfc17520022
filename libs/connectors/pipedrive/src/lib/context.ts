import { checkOutboundUrl, isJsonObject, UnicrmError, zodFailures } from '@unicrm/model';
import { z } from 'zod';

const API_DOMAIN =
  'is required: the Pipedrive company domain (https://<company>.pipedrive.com), or the api_domain an OAuth grant returned';
const EXPIRES_AT = 'must be an RFC 3339 date-time with a zone, e.g. 2026-01-01T12:00:00Z: when access_token expires';
const required = (what: string) => ({ error: `is required: ${what} (a non-empty string)` });

/** The base URL every Pipedrive call goes to: `api_domain` (API v2 lives under `/api/v2`). */
const ApiDomainSchema = z
  .url({ protocol: /^https?$/, error: API_DOMAIN })
  .describe('Base URL of the Pipedrive company: https://<company>.pipedrive.com, or the api_domain of an OAuth grant')
  .meta({ title: 'Company domain', description: 'The address you use to open Pipedrive, e.g. https://acme.pipedrive.com.' });

/** A Pipedrive account authenticated with a personal API token, sent in the `x-api-token` header (pipedrive-api.md §2.5). */
export const PipedriveTokenContextSchema = z
  .strictObject({
    api_domain: ApiDomainSchema,
    api_token: z
      .string(required("the user's Pipedrive API token"))
      .min(1, required("the user's Pipedrive API token"))
      .describe('Personal API token (x-api-token header); secret')
      .meta({ title: 'Personal API token', description: 'In Pipedrive: your name (top right) → Personal preferences → API → "Your personal API token".' }),
  })
  .meta({ id: 'PipedriveTokenContext' });

/**
 * A Pipedrive account authenticated with an OAuth 2 grant: the access token is sent as `Authorization: Bearer`; unicrm
 * refreshes it at Pipedrive's token endpoint (`https://oauth.pipedrive.com/oauth/token`, HTTP Basic with the app's
 * client id and secret) before `expires_at` and once after a 401, and stores the new tokens sealed.
 */
export const PipedriveOAuthContextSchema = z
  .strictObject({
    api_domain: ApiDomainSchema,
    access_token: z.string(required('the OAuth access token')).min(1, required('the OAuth access token')).describe('OAuth access token (Bearer); secret'),
    refresh_token: z.string(required('the OAuth refresh token')).min(1, required('the OAuth refresh token')).describe('OAuth refresh token; secret'),
    expires_at: z.iso.datetime({ offset: true, error: EXPIRES_AT }).describe('When access_token expires (RFC 3339); unicrm refreshes before it'),
    client_id: z.string(required("the OAuth app's client id")).min(1, required("the OAuth app's client id")).describe("The OAuth app's client id"),
    client_secret: z.string(required("the OAuth app's client secret")).min(1, required("the OAuth app's client secret")).describe("The OAuth app's client secret; secret"),
    token_url: z
      .url({ protocol: /^https?$/, error: 'must be an absolute URL' })
      .optional()
      .describe("Pipedrive's token endpoint; default https://oauth.pipedrive.com/oauth/token (a sandbox's locally)"),
  })
  .meta({ id: 'PipedriveOAuthContext' });

export type PipedriveTokenContext = z.infer<typeof PipedriveTokenContextSchema>;
export type PipedriveOAuthContext = z.infer<typeof PipedriveOAuthContextSchema>;
/** An account context of the `pipedrive` integration: one of the two auth modes. */
export type PipedriveContext = PipedriveTokenContext | PipedriveOAuthContext;

/** Pipedrive's OAuth token endpoint (pipedrive-api.md §2.5). */
export const PIPEDRIVE_TOKEN_URL = 'https://oauth.pipedrive.com/oauth/token';

/** The context keys that are secrets, in either mode. */
export const PIPEDRIVE_SECRET_KEYS = ['api_token', 'access_token', 'refresh_token', 'client_secret'] as const;

/** True for an OAuth context (it has an `access_token`). */
export function isOAuthContext(context: PipedriveContext | Record<string, unknown>): context is PipedriveOAuthContext {
  return typeof (context as Record<string, unknown>).access_token === 'string';
}

/**
 * Validates a Pipedrive context and returns it normalised: keys set to `null` are dropped first (so that a PATCH can
 * switch modes: `{"api_token": null, "access_token": ...}`), then the context must be exactly one mode, and
 * `api_domain` (and `token_url`) must pass the outbound policy ({@link checkOutboundUrl}).
 * @throws UnicrmError 400 with failures under `context.`
 */
export function parsePipedriveContext(context: unknown): PipedriveContext {
  if (!isJsonObject(context)) throw UnicrmError.validation([{ path: 'context', message: 'must be a JSON object' }]);
  const present = Object.fromEntries(Object.entries(context).filter(([, value]) => value !== null));
  const tokenMode = 'api_token' in present;
  const oauthKeys = ['access_token', 'refresh_token', 'expires_at', 'client_id', 'client_secret', 'token_url'].filter((key) => key in present);
  if (tokenMode && oauthKeys.length > 0) {
    throw UnicrmError.validation(
      oauthKeys.map((key) => ({
        path: `context.${key}`,
        message: 'an account uses either api_token or OAuth tokens, not both: leave it out, or set api_token to null to switch to OAuth',
      })),
    );
  }
  const schema = tokenMode || oauthKeys.length === 0 ? PipedriveTokenContextSchema : PipedriveOAuthContextSchema;
  const result = schema.safeParse(present);
  if (!result.success) throw UnicrmError.validation(zodFailures(result.error, 'context'));
  const parsed: PipedriveContext = { ...result.data };
  for (const key of ['api_domain', 'token_url'] as const) {
    const value = (parsed as Record<string, unknown>)[key];
    if (typeof value !== 'string') continue;
    try {
      (parsed as Record<string, unknown>)[key] = checkOutboundUrl(value, { example: 'https://acme.pipedrive.com' });
    } catch (error) {
      throw UnicrmError.validation([{ path: `context.${key}`, message: (error as Error).message }]);
    }
  }
  return parsed;
}
