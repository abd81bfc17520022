import type { Request } from 'express';
import { z } from 'zod';
import type { ProviderRateLimits } from '../kit/rate-limit';
import { loadPipedriveContract } from './contract';
import { messageFor, PipedriveError } from './errors';
import type { PipedriveInstance } from './module';
import { authenticate } from './routes';

/** Pipedrive's plans, as its rate-limit page names them. */
export const PIPEDRIVE_PLANS = ['lite', 'growth', 'premium', 'ultimate'] as const;
export type PipedrivePlan = (typeof PIPEDRIVE_PLANS)[number];

/** Per plan: an API token's burst per 2 s, and the multiplier of the daily token budget (Pipedrive's rate-limit page). */
export const PIPEDRIVE_PLAN_LIMITS: Record<PipedrivePlan, { burst: number; multiplier: number }> = {
  lite: { burst: 20, multiplier: 1 },
  growth: { burst: 40, multiplier: 2 },
  premium: { burst: 100, multiplier: 5 },
  ultimate: { burst: 120, multiplier: 7 },
};

/** Tokens per seat and multiplier in the daily budget (30 000 × plan multiplier × seats). */
export const PIPEDRIVE_TOKENS_PER_SEAT = 30_000;

/** The settings of Pipedrive's rate limits (docs/pipedrive-sandbox.md "Rate limits"). */
export interface PipedriveRateLimitSettings {
  /** The company's plan: `premium` by default. */
  plan: PipedrivePlan;
  /** An API token's requests per burst window; null: the plan's (Premium 100). */
  max: number | null;
  /** An OAuth token's burst is this many times an API token's: 4. */
  oauthMultiplier: number;
  /** The burst window: 2000 ms, rolling. */
  windowMs: number;
  /** Seats of the company, in the daily budget: 1. */
  seats: number;
  /** The company's daily token budget; null: 30 000 × plan multiplier × seats (Premium, 1 seat: 150 000). */
  dailyBudget: number | null;
  /** Send `Retry-After` (seconds) on a 429: false (only Pipedrive's old docs mention it). */
  retryAfter: boolean;
}

/** The sandbox's defaults: a Premium company with one seat. */
export const PIPEDRIVE_RATE_LIMITS: PipedriveRateLimitSettings = {
  plan: 'premium',
  max: null,
  oauthMultiplier: 4,
  windowMs: 2000,
  seats: 1,
  dailyBudget: null,
  retryAfter: false,
};

/** An API token's burst under these settings. */
export const pipedriveBurst = (settings: PipedriveRateLimitSettings): number => settings.max ?? PIPEDRIVE_PLAN_LIMITS[settings.plan].burst;

/** The daily token budget under these settings. */
export const pipedriveDailyBudget = (settings: PipedriveRateLimitSettings): number =>
  settings.dailyBudget ?? PIPEDRIVE_TOKENS_PER_SEAT * PIPEDRIVE_PLAN_LIMITS[settings.plan].multiplier * settings.seats;

const overrides = z
  .object({
    plan: z.enum(PIPEDRIVE_PLANS),
    max: z.number().int().min(0).nullable(),
    oauthMultiplier: z.number().int().positive(),
    windowMs: z.number().int().positive(),
    seats: z.number().int().positive(),
    dailyBudget: z.number().int().min(0).nullable(),
    retryAfter: z.boolean(),
  })
  .partial()
  .strict();

/**
 * The token cost of a request: its operation's `x-token-cost` in the sandbox's copy of Pipedrive's OpenAPI document
 * (stage create 5, get 1, list 5, delete 3, update 5). A request the document has no operation for costs 1.
 */
export function pipedriveTokenCost(method: string, path: string): number {
  const cost = loadPipedriveContract().findOperation(method, path)?.extensions['x-token-cost'];
  return typeof cost === 'number' && Number.isInteger(cost) && cost >= 0 ? cost : 1;
}

const DAY_MS = 86_400_000;
const seconds = (ms: number) => String(Math.max(1, Math.ceil(ms / 1000)));

/**
 * Pipedrive's limits as the kit enforces them when switched on: a rolling burst window per token (an OAuth token gets
 * `oauthMultiplier` × an API token's), and the company's daily token budget (a fixed day, midnight to midnight UTC),
 * where each request spends its operation's `x-token-cost`. Every counted answer carries `x-ratelimit-limit`,
 * `x-ratelimit-remaining`, `x-ratelimit-reset` (seconds until a slot of the burst window frees) and
 * `x-daily-ratelimit-token-remaining` (the budget left; the header's name is reported by a third party, unverified).
 * Past either: Pipedrive's 429 (`Request over limit`). Requests without valid credentials (answered 401) and the OAuth
 * endpoints are not counted.
 */
export const pipedriveRateLimits: ProviderRateLimits<PipedriveRateLimitSettings, PipedriveInstance> = {
  defaults: PIPEDRIVE_RATE_LIMITS,
  meanings: {
    plan: 'the plan: lite, growth, premium or ultimate (sets the burst and the budget multiplier)',
    max: "an API token's requests per burst window (default: the plan's; Lite 20, Growth 40, Premium 100, Ultimate 120)",
    oauthMultiplier: "an OAuth token's burst as a multiple of an API token's",
    windowMs: 'burst window in ms (rolling)',
    seats: 'seats of the company, for the daily token budget',
    dailyBudget: 'daily token budget (default: 30000 x plan multiplier x seats)',
    retryAfter: 'send Retry-After on a 429 (1/0)',
  },
  parse(value) {
    const result = overrides.safeParse(value ?? {});
    if (!result.success) throw new Error(result.error.issues.map((issue) => `${issue.path.join('.') || '(settings)'}: ${issue.message}`).join('; '));
    return result.data;
  },
  windows: (settings) => [
    { name: 'burst', max: pipedriveBurst(settings), windowMs: settings.windowMs },
    { name: 'daily', max: pipedriveDailyBudget(settings), windowMs: DAY_MS, kind: 'fixed' },
  ],
  classify(req: Request, instance, settings) {
    if (!req.path.startsWith('/api/')) return undefined;
    let key: string;
    try {
      key = authenticate(req, instance.config, instance.tokens);
    } catch {
      return undefined;
    }
    const oauth = key.startsWith('oauth:');
    return {
      key,
      keys: { daily: 'company' },
      costs: { daily: pipedriveTokenCost(req.method, req.path) },
      max: oauth ? { burst: pipedriveBurst(settings) * settings.oauthMultiplier } : undefined,
    };
  },
  headers(decision) {
    const burst = decision.windows['burst'];
    return {
      'x-ratelimit-limit': String(burst.max),
      'x-ratelimit-remaining': String(burst.remaining),
      'x-ratelimit-reset': seconds(burst.resetMs),
      'x-daily-ratelimit-token-remaining': String(decision.windows['daily'].remaining),
    };
  },
  refusal(decision, settings) {
    const daily = decision.refusedBy === 'daily';
    const window = decision.windows[daily ? 'daily' : 'burst'];
    const headers: Record<string, string> = settings.retryAfter ? { 'Retry-After': seconds(window.resetMs) } : {};
    return new PipedriveError(429, daily ? `${messageFor(429)}: the daily token budget is spent` : messageFor(429), headers);
  },
};
