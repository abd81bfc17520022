import type { Request } from 'express';
import { z } from 'zod';
import type { ProviderRateLimits } from '../kit/rate-limit';
import { errorBody, faultErrorBody, PipelinerError } from './errors';
import type { PipelinerInstance } from './module';
import { checkCredentials } from './routes';

/**
 * The settings of the Pipeliner sandbox's rate limits. Pipeliner documents none: every number here is the sandbox's
 * assumption (docs/pipeliner-sandbox.md "Rate limits").
 */
export interface PipelinerRateLimitSettings {
  /** Requests per window and space credentials: 60 (assumed). */
  max: number;
  /** The window: 10 000 ms, rolling (assumed). */
  windowMs: number;
  /** Largest number of items one `batch-modify`, `batch-delete` or `batch-restore` accepts: 100 (assumed). */
  batchMax: number;
  /** Send `Retry-After` (seconds) on a 429: true. */
  retryAfter: boolean;
}

/** The sandbox's assumed limits for Pipeliner. */
export const PIPELINER_RATE_LIMITS: PipelinerRateLimitSettings = { max: 60, windowMs: 10_000, batchMax: 100, retryAfter: true };

const overrides = z
  .object({
    max: z.number().int().min(0),
    windowMs: z.number().int().positive(),
    batchMax: z.number().int().positive(),
    retryAfter: z.boolean(),
  })
  .partial()
  .strict();

const SPACE_PATH = /^\/api\/v100\/rest\/spaces\/([^/]+)\//;
const BATCH_PATH = /\/entities\/[A-Za-z]+\/batch-(modify|delete|restore)$/;
const seconds = (ms: number) => String(Math.max(1, Math.ceil(ms / 1000)));

/** The number of items in a batch request's body, or undefined when it is not a JSON array (the route answers that). */
function batchSize(req: Request): number | undefined {
  const text = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value.length : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Pipeliner's limits as the sandbox assumes them, enforced when switched on: a rolling window per space credentials
 * (`max` requests per `windowMs`, a batch counting as one request), with the IETF draft headers `RateLimit-Limit`,
 * `RateLimit-Remaining`, `RateLimit-Reset` (seconds until a unit frees) and `RateLimit-Policy` (`60;w=10`) on every
 * counted answer; past it, a 429 in Pipeliner's `Error` shape (code 130 `ERROR_RATE_LIMIT_EXCEEDED`) with
 * `Retry-After`. A batch of more than `batchMax` items answers 400 code 117 `ERROR_PARAMETER_INVALID` naming the
 * limit. Requests without valid credentials for the space (answered 401) are not counted.
 */
export const pipelinerRateLimits: ProviderRateLimits<PipelinerRateLimitSettings, PipelinerInstance> = {
  defaults: PIPELINER_RATE_LIMITS,
  meanings: {
    max: 'requests per window and space credentials (assumed; Pipeliner documents no limit)',
    windowMs: 'window in ms (rolling)',
    batchMax: 'most items in one batch-modify/-delete/-restore (assumed)',
    retryAfter: 'send Retry-After on a 429 (1/0)',
  },
  parse(value) {
    const result = overrides.safeParse(value ?? {});
    if (!result.success) throw new Error(result.error.issues.map((issue) => `${issue.path.join('.') || '(settings)'}: ${issue.message}`).join('; '));
    return result.data;
  },
  windows: (settings) => [{ name: 'requests', max: settings.max, windowMs: settings.windowMs }],
  classify(req, instance) {
    const space = SPACE_PATH.exec(req.path)?.[1];
    if (space === undefined) return undefined;
    try {
      checkCredentials(req.headers.authorization, decodeURIComponent(space), instance.config);
    } catch {
      return undefined;
    }
    return { key: `space:${space}` };
  },
  headers(decision, settings) {
    const window = decision.windows['requests'];
    return {
      'RateLimit-Limit': String(window.max),
      'RateLimit-Remaining': String(window.remaining),
      'RateLimit-Reset': seconds(window.resetMs),
      'RateLimit-Policy': `${window.max};w=${Math.ceil(settings.windowMs / 1000)}`,
    };
  },
  refusal(decision, settings) {
    const headers: Record<string, string> = settings.retryAfter ? { 'Retry-After': seconds(decision.windows['requests'].resetMs) } : {};
    return new PipelinerError(429, faultErrorBody(429), headers);
  },
  check(req, settings) {
    if (req.method !== 'POST' || !BATCH_PATH.test(req.path)) return undefined;
    const size = batchSize(req);
    if (size === undefined || size <= settings.batchMax) return undefined;
    return new PipelinerError(
      400,
      errorBody(400, 117, 'ERROR_PARAMETER_INVALID', `Too many items in one batch: ${size}. At most ${settings.batchMax} items are accepted per request.`),
    );
  },
};
