import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ProviderRateLimits, RateDecision } from '../kit/rate-limit';
import { HubSpotError } from './errors';
import type { HubSpotInstance } from './module';
import { authenticate } from './routes';

/** The settings of HubSpot's rate limits (docs/hubspot-sandbox.md "Rate limits"). */
export interface HubSpotRateLimitSettings {
  /** Requests per burst window and account: 190 (private apps on Professional and Enterprise). */
  max: number;
  /** The burst window: 10 000 ms (HubSpot's `TEN_SECONDLY_ROLLING`). */
  windowMs: number;
  /** A private app's requests per day: 650 000 (Professional; Enterprise 1 000 000, Free/Starter 250 000). */
  dailyMax: number;
  /** Send `Retry-After` (seconds) on a 429: true (reported by third parties, not in HubSpot's docs). */
  retryAfter: boolean;
}

/** HubSpot's documented numbers for a private app on Professional or Enterprise. */
export const HUBSPOT_RATE_LIMITS: HubSpotRateLimitSettings = { max: 190, windowMs: 10_000, dailyMax: 650_000, retryAfter: true };

const DAY_MS = 86_400_000;

const overrides = z
  .object({
    max: z.number().int().min(0),
    windowMs: z.number().int().positive(),
    dailyMax: z.number().int().min(0),
    retryAfter: z.boolean(),
  })
  .partial()
  .strict();

/** `path: problem; ...` of a failed zod parse. */
function problems(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || '(settings)'}: ${issue.message}`).join('; ');
}

const seconds = (ms: number) => String(Math.max(1, Math.ceil(ms / 1000)));

/**
 * HubSpot's limits as the kit enforces them when switched on: a rolling burst window per account (the private app's
 * token; every OAuth token of the sandbox's one portal shares another) and a private app's daily limit (a fixed day,
 * midnight to midnight UTC; OAuth calls have none). Every counted answer carries `X-HubSpot-RateLimit-Max`,
 * `-Remaining`, `-Interval-Milliseconds`, and for the private app `-Daily` and `-Daily-Remaining` (HubSpot sends no
 * daily headers on OAuth calls). Past a limit: 429 in HubSpot's shape with `errorType: RATE_LIMIT` and `policyName`
 * `TEN_SECONDLY_ROLLING` or `DAILY`, and `Retry-After` unless `retryAfter` is false. Requests without valid
 * credentials (answered 401) and the OAuth endpoints are not counted.
 */
export const hubspotRateLimits: ProviderRateLimits<HubSpotRateLimitSettings, HubSpotInstance> = {
  defaults: HUBSPOT_RATE_LIMITS,
  meanings: {
    max: 'requests per burst window and account (HubSpot: 190 for Professional/Enterprise private apps, 100 Free/Starter)',
    windowMs: 'burst window in ms (rolling)',
    dailyMax: "a private app's requests per day (650000 Professional, 1000000 Enterprise)",
    retryAfter: 'send Retry-After on a 429 (1/0)',
  },
  parse(value) {
    const result = overrides.safeParse(value ?? {});
    if (!result.success) throw new Error(problems(result.error));
    return result.data;
  },
  windows: (settings) => [
    { name: 'burst', max: settings.max, windowMs: settings.windowMs },
    { name: 'daily', max: settings.dailyMax, windowMs: DAY_MS, kind: 'fixed' },
  ],
  classify(req, instance) {
    if (req.path.startsWith('/oauth/')) return undefined;
    try {
      const caller = authenticate(req, instance.config, instance.tokens);
      return { key: caller.key, costs: { daily: caller.privateApp ? 1 : 0 }, tag: caller.privateApp ? 'private-app' : 'oauth' };
    } catch {
      return undefined;
    }
  },
  headers(decision, settings, classification) {
    const burst = decision.windows['burst'];
    const headers: Record<string, string> = {
      'X-HubSpot-RateLimit-Max': String(burst.max),
      'X-HubSpot-RateLimit-Remaining': String(burst.remaining),
      'X-HubSpot-RateLimit-Interval-Milliseconds': String(settings.windowMs),
    };
    if (classification.tag === 'private-app') {
      const daily = decision.windows['daily'];
      headers['X-HubSpot-RateLimit-Daily'] = String(daily.max);
      headers['X-HubSpot-RateLimit-Daily-Remaining'] = String(daily.remaining);
    }
    return headers;
  },
  refusal(decision: RateDecision, settings) {
    const daily = decision.refusedBy === 'daily';
    const window = decision.windows[daily ? 'daily' : 'burst'];
    const headers: Record<string, string> = settings.retryAfter ? { 'Retry-After': seconds(window.resetMs) } : {};
    const error = new HubSpotError(429, daily ? 'You have reached your daily limit.' : 'You have reached your ten_secondly_rolling limit.', 'RATE_LIMITS', {}, headers);
    Object.assign(error.body, { errorType: 'RATE_LIMIT', policyName: daily ? 'DAILY' : 'TEN_SECONDLY_ROLLING', requestId: randomUUID() });
    return error;
  },
};
