import type { Request } from 'express';
import type { SandboxHttpError } from './errors';
import type { JsonObject } from './types';

/**
 * Rate limits for every provider sandbox (docs/sandboxes.md "Rate limits"): in-memory windows counted per credential,
 * off unless switched on, with the numbers, headers and 429 answer each provider module declares. The kit knows no
 * provider: the module says which windows exist, what a request costs in each and whom it counts against.
 */

/** One window a provider counts requests (or cost units) in. */
export interface RateWindow {
  /** Name, as the module and the statistics refer to it (`burst`, `daily`). */
  name: string;
  /** Units allowed per window and key (a key may get its own `max`: {@link RateClassification.max}). */
  max: number;
  /** Length of the window in milliseconds. */
  windowMs: number;
  /**
   * `rolling` (default): a unit counts for `windowMs` after it was spent (HubSpot's ten-second and Pipedrive's
   * two-second windows). `fixed`: windows aligned on multiples of `windowMs` since the epoch, so a 24-hour window
   * starts again at midnight UTC (the daily budgets).
   */
  kind?: 'rolling' | 'fixed';
}

/** A window's state for one key, after a request was counted (or refused). */
export interface RateWindowState {
  name: string;
  /** The max that applies to this key. */
  max: number;
  windowMs: number;
  /** Units spent in the current window, this request's included when it was allowed. */
  used: number;
  /** `max - used`, never below 0. */
  remaining: number;
  /**
   * Milliseconds until the window frees a unit: for a rolling window, until the oldest spent unit leaves it (0 when
   * none is spent); for a fixed window, until it starts again.
   */
  resetMs: number;
}

/** What the limiter decided for one request. */
export interface RateDecision {
  allowed: boolean;
  /** The window that refused it (the first, in the declared order, that had not room for its cost). */
  refusedBy?: string;
  /** Every window's state for this request's keys, by name. */
  windows: Record<string, RateWindowState>;
}

/** Whom a request counts against, and what it costs, as a provider module says. */
export interface RateClassification {
  /** The credential the provider counts against (a token, an account): the key of every window. */
  key: string;
  /** A different key for some windows (Pipedrive: the burst window per token, the daily budget per company). */
  keys?: Record<string, string>;
  /** Cost per window; 1 for a window not named. 0 spends nothing in it. */
  costs?: Record<string, number>;
  /** Another `max` for this key in some windows (Pipedrive's OAuth tokens: four times an API token's burst). */
  max?: Record<string, number>;
  /** Anything the module wants back in `headers` and `refusal` (e.g. HubSpot: a private app's token or an OAuth one). */
  tag?: string;
}

/** Injectable clock, in epoch milliseconds (`Date.now` by default; tests pass their own). */
export type Clock = () => number;

interface Spend {
  at: number;
  cost: number;
}

interface WindowCounter {
  /** Rolling: spends in time order. */
  spends: Spend[];
  /** Fixed: start of the current window and units spent in it. */
  start: number;
  used: number;
}

/**
 * Rolling (or fixed) windows counted per key, in memory. A refused request spends nothing in any window (as HubSpot
 * and Pipedrive behave: a 429 does not push the window further), and a request is allowed only when every window has
 * room for its cost.
 */
export class WindowLimiter {
  private readonly counters = new Map<string, WindowCounter>();

  /** @throws Error for a window whose `max` is not a whole number >= 0 or whose `windowMs` is not a whole number > 0 */
  constructor(
    readonly windows: readonly RateWindow[],
    private readonly clock: Clock = Date.now,
  ) {
    for (const window of windows) {
      if (!Number.isInteger(window.max) || window.max < 0) throw new Error(`Rate window '${window.name}': max must be a whole number >= 0, got ${window.max}.`);
      if (!Number.isInteger(window.windowMs) || window.windowMs <= 0) throw new Error(`Rate window '${window.name}': windowMs must be a whole number > 0, got ${window.windowMs}.`);
    }
  }

  /** Counts one request of `classification` now: allowed when every window has room for its cost, which it then spends. */
  take(classification: RateClassification): RateDecision {
    const now = this.clock();
    const states = this.windows.map((window) => {
      const counter = this.counter(window, classification.keys?.[window.name] ?? classification.key, now);
      const max = classification.max?.[window.name] ?? window.max;
      const cost = classification.costs?.[window.name] ?? 1;
      const used = window.kind === 'fixed' ? counter.used : counter.spends.reduce((sum, spend) => sum + spend.cost, 0);
      return { window, counter, max, cost, used };
    });
    const refused = states.find((state) => state.cost > 0 && state.used + state.cost > state.max);
    if (!refused) {
      for (const state of states) {
        if (state.cost <= 0) continue;
        if (state.window.kind === 'fixed') state.counter.used += state.cost;
        else state.counter.spends.push({ at: now, cost: state.cost });
        state.used += state.cost;
      }
    }
    const windows: Record<string, RateWindowState> = {};
    for (const { window, counter, max, used } of states) {
      const resetMs =
        window.kind === 'fixed'
          ? counter.start + window.windowMs - now
          : counter.spends.length === 0
            ? 0
            : counter.spends[0].at + window.windowMs - now;
      windows[window.name] = { name: window.name, max, windowMs: window.windowMs, used, remaining: Math.max(0, max - used), resetMs: Math.max(0, resetMs) };
    }
    return refused ? { allowed: false, refusedBy: refused.window.name, windows } : { allowed: true, windows };
  }

  /** Forgets every spend. */
  clear(): void {
    this.counters.clear();
  }

  /** The counter of one window and key, with spends older than the window dropped (rolling) or a new window started (fixed). */
  private counter(window: RateWindow, key: string, now: number): WindowCounter {
    const id = `${window.name}\u0000${key}`;
    let counter = this.counters.get(id);
    if (!counter) {
      counter = { spends: [], start: 0, used: 0 };
      this.counters.set(id, counter);
    }
    if (window.kind === 'fixed') {
      const start = Math.floor(now / window.windowMs) * window.windowMs;
      if (start !== counter.start) {
        counter.start = start;
        counter.used = 0;
      }
    } else {
      let drop = 0;
      while (drop < counter.spends.length && counter.spends[drop].at <= now - window.windowMs) drop += 1;
      if (drop > 0) counter.spends.splice(0, drop);
    }
    return counter;
  }
}

/**
 * A provider's rate limits, as its module declares them (`ProviderModule.rateLimits`). `S` is the module's settings:
 * a flat object of numbers, booleans, strings or null (null: "derived", e.g. Pipedrive's budget from plan and seats).
 * Each key can be overridden with `startProviderSandbox(module, { rateLimit: {...} })`, `POST /__sandbox/rate-limit`
 * and the variable `<PREFIX>_RATE_LIMIT_<KEY>` (camelCase key in upper snake case: `windowMs` -> `_WINDOW_MS`).
 * Every module's settings have `max`, the burst window's limit (the kit's `rateLimit: <number>` shorthand sets it).
 */
export interface ProviderRateLimits<S extends { max: number | null }, TInstance = unknown> {
  /** The provider's documented numbers (or the sandbox's stated assumption). */
  readonly defaults: S;
  /** One line per setting, for `--help` and the docs. */
  readonly meanings: { readonly [K in keyof S]: string };
  /** Checks overrides: unknown keys and wrong types refused. @throws Error naming each problem */
  parse(value: unknown): Partial<S>;
  /** The windows these settings make, in the order they are checked. @throws Error for settings that make no sense */
  windows(settings: S): RateWindow[];
  /**
   * Whom the request counts against and what it costs, or undefined when the provider would not count it (a request
   * without valid credentials, which the module's routes answer 401; an endpoint outside the API, such as an OAuth
   * token endpoint).
   */
  classify(req: Request, instance: TInstance, settings: S): RateClassification | undefined;
  /** The headers of every counted answer, allowed or refused. */
  headers(decision: RateDecision, settings: S, classification: RateClassification): Record<string, string>;
  /** The provider's 429 in its own error shape (the `headers` are added to it). */
  refusal(decision: RateDecision, settings: S, classification: RateClassification): SandboxHttpError;
  /**
   * Further checks while the limits are on, after the request was counted and allowed (Pipeliner: the largest batch
   * it accepts). Returns the error to answer, or undefined to go on.
   */
  check?(req: Request, settings: S): SandboxHttpError | undefined;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyRateLimits = ProviderRateLimits<any, any>;

/** One refused request, for the statistics. */
export interface RateRefusal {
  /** Milliseconds since the limiter was switched on (or its counters cleared). */
  atMs: number;
  /** Epoch milliseconds. */
  at: number;
  /** The window that refused it. */
  window: string;
  method: string;
  path: string;
}

/** What `GET /__sandbox/rate-limit` answers (`data`). */
export interface RateLimitSnapshot {
  on: boolean;
  /** The settings in force (the module's defaults with every override). */
  settings: JsonObject;
  /** The windows these settings make. */
  windows: RateWindow[];
  /** Epoch ms the limiter was switched on or its counters last cleared; null while off and never on. */
  since: number | null;
  /** Requests counted and let through. */
  allowed: number;
  /** Requests answered 429. */
  refused: number;
  /** Refusals per window name. */
  refusedBy: Record<string, number>;
  /** Epoch ms of the first counted request since `since` (null before any). */
  firstRequestAt: number | null;
  /** The refusals, oldest first (the first {@link MAX_REFUSALS_KEPT}; `refused` counts them all). */
  refusals: RateRefusal[];
}

/** How many refusals the statistics keep one by one. */
export const MAX_REFUSALS_KEPT = 10_000;

/** What the kit's rate-limit option, variable or admin route asks for: on or off, with overrides. */
export type RateLimitRequest = boolean | number | Record<string, unknown>;

const camelToEnv = (key: string) => key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

/** The variable that overrides one setting: `<PREFIX>_RATE_LIMIT_<KEY>` (`HUBSPOT_SANDBOX_RATE_LIMIT_WINDOW_MS`). */
export function rateLimitVariable(envPrefix: string, key: string): string {
  return `${envPrefix}_RATE_LIMIT_${camelToEnv(key)}`;
}

const TRUE_WORDS = ['1', 'true', 'yes', 'on'];
const FALSE_WORDS = ['0', 'false', 'no', 'off', ''];

/**
 * Reads `<PREFIX>_RATE_LIMIT` (on/off: `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`/unset) and every
 * `<PREFIX>_RATE_LIMIT_<KEY>` override of the module's settings. Values are read as booleans for boolean defaults,
 * as numbers when they look like one, and as text otherwise; the module's `parse` then checks them.
 * @returns false when off; otherwise the overrides (possibly empty)
 * @throws Error for a `<PREFIX>_RATE_LIMIT` that is not an on/off word (a number there was the old way to set the
 *   limit: the message names the `_MAX` variable), or an override the module refuses
 */
export function rateLimitFromEnv(envPrefix: string, limits: AnyRateLimits | undefined, env: NodeJS.ProcessEnv): false | Record<string, unknown> {
  const name = `${envPrefix}_RATE_LIMIT`;
  const text = (env[name] ?? '').trim().toLowerCase();
  if (FALSE_WORDS.includes(text)) return false;
  if (!TRUE_WORDS.includes(text)) {
    throw new Error(`${name} switches the rate limits on or off (1/0, true/false, yes/no, on/off), not '${env[name]}'; the number of requests is ${name}_MAX.`);
  }
  if (!limits) throw new Error(`${name}: this sandbox declares no rate limits.`);
  const overrides: Record<string, unknown> = {};
  for (const [key, fallback] of Object.entries(limits.defaults as Record<string, unknown>)) {
    const raw = env[rateLimitVariable(envPrefix, key)];
    if (raw === undefined || raw.trim() === '') continue;
    const value = raw.trim();
    if (typeof fallback === 'boolean') {
      if (TRUE_WORDS.includes(value.toLowerCase())) overrides[key] = true;
      else if (FALSE_WORDS.includes(value.toLowerCase())) overrides[key] = false;
      else throw new Error(`${rateLimitVariable(envPrefix, key)} must be 1 or 0 (true/false), not '${raw}'.`);
    } else overrides[key] = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  }
  try {
    return limits.parse(overrides) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`${envPrefix}_RATE_LIMIT_*: ${(error as Error).message}`);
  }
}

/**
 * One sandbox's rate limits: on or off, the settings in force, the windows, and the statistics. Made by the kit for
 * every module that declares `rateLimits`; the kit's middleware calls {@link handle} for each request outside the
 * admin routes.
 */
export class RateLimitController {
  private on = false;
  private settings: Record<string, unknown>;
  private limiter: WindowLimiter;
  private since: number | null = null;
  private allowed = 0;
  private refused = 0;
  private refusedBy: Record<string, number> = {};
  private firstRequestAt: number | null = null;
  private refusals: RateRefusal[] = [];

  constructor(
    private readonly limits: AnyRateLimits,
    private readonly instance: unknown,
    private readonly clock: Clock = Date.now,
  ) {
    this.settings = { ...limits.defaults };
    this.limiter = new WindowLimiter(limits.windows(this.settings), clock);
  }

  /**
   * Switches the limits on (with overrides on top of the module's defaults, replacing earlier overrides) or off.
   * Either way the counters and statistics start afresh. A number is the shorthand of `{ max: n }`.
   * @throws Error for an override the module refuses or settings that make no valid window (nothing changes then)
   */
  set(request: RateLimitRequest): void {
    if (request === false) {
      this.on = false;
      this.clear();
      return;
    }
    const overrides = request === true ? {} : typeof request === 'number' ? { max: request } : request;
    const settings = { ...this.limits.defaults, ...(this.limits.parse(overrides) as Record<string, unknown>) };
    const limiter = new WindowLimiter(this.limits.windows(settings), this.clock);
    this.settings = settings;
    this.limiter = limiter;
    this.on = true;
    this.clear();
  }

  /** True while the limits are enforced. */
  isOn(): boolean {
    return this.on;
  }

  /** Clears the counters and statistics (the settings and on/off stay). */
  clear(): void {
    this.limiter.clear();
    this.since = this.on ? this.clock() : null;
    this.allowed = 0;
    this.refused = 0;
    this.refusedBy = {};
    this.firstRequestAt = null;
    this.refusals = [];
  }

  /** The settings, windows and statistics. */
  snapshot(): RateLimitSnapshot {
    return {
      on: this.on,
      settings: { ...this.settings },
      windows: this.limiter.windows.map((window) => ({ ...window })),
      since: this.since,
      allowed: this.allowed,
      refused: this.refused,
      refusedBy: { ...this.refusedBy },
      firstRequestAt: this.firstRequestAt,
      refusals: this.refusals.map((refusal) => ({ ...refusal })),
    };
  }

  /**
   * Counts one request while on: sets the provider's headers on `setHeader`, and returns the error to answer (the
   * provider's 429, or a `check` failure), or undefined to go on. Off, or for a request the module does not count:
   * undefined and no headers.
   */
  handle(req: Request, setHeader: (name: string, value: string) => void): SandboxHttpError | undefined {
    if (!this.on) return undefined;
    const classification = this.limits.classify(req, this.instance, this.settings);
    if (!classification) return undefined;
    const decision = this.limiter.take(classification);
    const now = this.clock();
    this.firstRequestAt ??= now;
    const headers = this.limits.headers(decision, this.settings, classification);
    for (const [name, value] of Object.entries(headers)) setHeader(name, value);
    if (!decision.allowed) {
      const window = decision.refusedBy ?? '';
      this.refused += 1;
      this.refusedBy[window] = (this.refusedBy[window] ?? 0) + 1;
      if (this.refusals.length < MAX_REFUSALS_KEPT) {
        this.refusals.push({ atMs: now - (this.since ?? now), at: now, window, method: req.method, path: req.path });
      }
      // The headers set above stay on the answer; the refusal may add its own (Retry-After).
      return this.limits.refusal(decision, this.settings, classification);
    }
    this.allowed += 1;
    return this.limits.check?.(req, this.settings);
  }
}
