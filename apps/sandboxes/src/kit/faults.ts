import type { ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { sendCorrupted, sendJson, setBodyFault } from './http';
import type { FaultRule, JsonObject } from './types';

/**
 * Fault injection for every provider sandbox (a sandbox extension, never a provider's behaviour): latency, error
 * statuses in the provider's own error shape, corrupted bodies, connection resets and hung requests, set per request
 * (`X-Sandbox-Fault` header) or for following requests (`injectFault`, `POST /__sandbox/faults`).
 * See docs/sandboxes.md "Faults".
 */

/** Name of the per-request fault header. */
export const FAULT_HEADER = 'x-sandbox-fault';

/** What a status fault answers: the provider's error body for the status, and its extra headers. */
export interface FaultAnswer {
  body: JsonObject;
  headers?: Record<string, string>;
}

/**
 * Renders a status fault in the provider's error shape (`ProviderErrors.fault`). `rule.status` is set;
 * `rule.missingField` only with the provider's validation status.
 */
export type FaultRenderer = (rule: FaultRule & { status: number }, request: { method: string; path: string }) => FaultAnswer;

/** Options of {@link parseFaultRule}. */
export interface FaultRuleOptions {
  /** The provider's validation status, the only status `missingField` goes with (Pipeliner: 422). Default 422. */
  validationStatus?: number;
}

const ruleShape = z
  .object({
    method: z.string().min(1).optional(),
    path: z.string().min(1).optional(),
    times: z.number().int().positive().optional(),
    latencyMs: z.number().int().nonnegative().max(600_000).optional(),
    status: z.number().int().min(200).max(599).optional(),
    retryAfter: z.number().int().nonnegative().optional(),
    body: z.enum(['malformed', 'truncated', 'empty', 'html']).optional(),
    reset: z.boolean().optional(),
    hang: z.boolean().optional(),
    missingField: z.string().min(1).optional(),
  })
  .strict();

/**
 * Validates a fault rule (unknown keys rejected, so a typo never silently does nothing; `missingField` only with
 * the provider's validation status).
 * @throws Error `Invalid fault rule: <path>: <problem>; ...` listing every problem.
 */
export function parseFaultRule(value: unknown, options: FaultRuleOptions = {}): FaultRule {
  const validationStatus = options.validationStatus ?? 422;
  const result = ruleShape
    .refine((rule) => rule.missingField === undefined || rule.status === validationStatus, {
      message: `missingField needs status ${validationStatus}`,
      path: ['missingField'],
    })
    .safeParse(value);
  if (!result.success) {
    throw new Error(`Invalid fault rule: ${result.error.issues.map((i) => `${i.path.join('.') || '(rule)'}: ${i.message}`).join('; ')}`);
  }
  return result.data;
}

/** True when the rule's method and path select this request. `path` is a substring or a RegExp source. */
export function ruleMatches(rule: FaultRule, method: string, path: string): boolean {
  if (rule.method && rule.method.toUpperCase() !== method.toUpperCase()) return false;
  if (!rule.path) return true;
  if (path.includes(rule.path)) return true;
  try {
    return new RegExp(rule.path).test(path);
  } catch {
    return false;
  }
}

interface StoredRule {
  rule: FaultRule;
  remaining: number | undefined;
}

/** Options of a {@link FaultController}: what it needs of the provider. */
export interface FaultControllerOptions extends FaultRuleOptions {
  /** Renders status faults in the provider's error shape. */
  render: FaultRenderer;
}

/**
 * Holds one sandbox's programmatic rules, applies rules to requests, and keeps every request a fault holds waiting
 * (latency, hang), so `reset()` and `close()` can end them all.
 */
export class FaultController {
  private rules: StoredRule[] = [];
  private readonly hung = new Set<ServerResponse>();
  private readonly sleeps = new Set<{ timer: NodeJS.Timeout; resolve: (completed: boolean) => void }>();

  constructor(private readonly options: FaultControllerOptions) {}

  /** Validates a rule for this sandbox's provider (see {@link parseFaultRule}). @throws Error for an invalid rule */
  parse(value: unknown): FaultRule {
    return parseFaultRule(value, this.options);
  }

  /** Adds a rule for the following requests (checked in insertion order; the first match applies). @throws Error for an invalid rule */
  add(rule: FaultRule): void {
    const valid = this.parse(rule);
    this.rules.push({ rule: valid, remaining: valid.times });
  }

  clear(): void {
    this.rules = [];
  }

  /** Active rules with their remaining counts (as `times`). */
  list(): FaultRule[] {
    return this.rules.map(({ rule, remaining }) => (remaining === undefined ? { ...rule } : { ...rule, times: remaining }));
  }

  /** Finds (and consumes one use of) the first rule matching this request. */
  take(method: string, path: string): FaultRule | undefined {
    const stored = this.rules.find(({ rule }) => ruleMatches(rule, method, path));
    if (!stored) return undefined;
    if (stored.remaining !== undefined) {
      stored.remaining -= 1;
      if (stored.remaining <= 0) this.rules = this.rules.filter((s) => s !== stored);
    }
    return stored.rule;
  }

  /**
   * Applies a rule to a request: waits `latencyMs`, then resets, hangs, answers the status fault, or marks
   * the real answer for body corruption.
   * @returns true when the request was answered (or dropped) here; false to continue normal handling.
   */
  async apply(rule: FaultRule, req: Request, res: Response): Promise<boolean> {
    if (rule.latencyMs && !(await this.sleep(rule.latencyMs))) return true;
    if (res.writableEnded) return true;
    // A caller that gave up during the latency does not stop the work, as on a real server: a plain slow
    // request is still carried out (its answer goes nowhere). This is what makes a client timeout ambiguous.
    if (res.destroyed) return Boolean(rule.reset || rule.hang || rule.status !== undefined);
    if (rule.reset) {
      req.socket.destroy();
      return true;
    }
    if (rule.hang) {
      this.hung.add(res);
      res.on('close', () => this.hung.delete(res));
      return true;
    }
    if (rule.status !== undefined) {
      const answer = this.options.render({ ...rule, status: rule.status }, { method: req.method, path: req.path });
      const headers: Record<string, string> = { ...answer.headers };
      if (rule.retryAfter !== undefined) headers['Retry-After'] = String(rule.retryAfter);
      const body = answer.body;
      if (rule.body) {
        for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
        sendCorrupted(res, rule.status, JSON.stringify(body), rule.body);
      } else {
        sendJson(res, rule.status, body, headers);
      }
      return true;
    }
    if (rule.body) setBodyFault(res, rule.body);
    return false;
  }

  /** Ends every hung request and cuts every pending latency short (used by `close()` and `reset()`). */
  releaseAll(): void {
    for (const res of this.hung) res.socket?.destroy();
    this.hung.clear();
    for (const sleep of this.sleeps) {
      clearTimeout(sleep.timer);
      sleep.resolve(false);
    }
    this.sleeps.clear();
  }

  /** Waits `ms`; resolves true, or false when cut short by {@link releaseAll} (the request is then dropped). */
  private sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.sleeps.delete(entry);
          resolve(true);
        }, ms),
        resolve,
      };
      this.sleeps.add(entry);
    });
  }
}
