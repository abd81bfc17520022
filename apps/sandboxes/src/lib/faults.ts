import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { faultErrorBody, missingFieldIssue, validationErrorBody } from './errors';
import { sendCorrupted, sendJson, setBodyFault } from './http';
import type { FaultRule } from './types';

/**
 * Fault injection (a sandbox extension, not Pipeliner behaviour): latency, error statuses, corrupted bodies,
 * connection resets and hung requests, set per request (`X-Sandbox-Fault` header), for following requests
 * (`injectFault`, `POST /__sandbox/faults`). See docs/pipeliner-sandbox.md "Fault injection".
 */

/** Name of the per-request fault header. */
export const FAULT_HEADER = 'x-sandbox-fault';

const faultRuleSchema = z
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
  .strict()
  .refine((rule) => rule.missingField === undefined || rule.status === 422, { message: 'missingField needs status 422', path: ['missingField'] });

/**
 * Validates a fault rule (unknown keys rejected, so a typo never silently does nothing).
 * @throws Error with a readable list of problems.
 */
export function parseFaultRule(value: unknown): FaultRule {
  const result = faultRuleSchema.safeParse(value);
  if (!result.success) {
    throw new Error(`Invalid fault rule: ${result.error.issues.map((i) => `${i.path.join('.') || '(rule)'}: ${i.message}`).join('; ')}`);
  }
  return result.data;
}

/** `Step` for a path under `/entities/Steps`, `Pipeline` under `/entities/Pipelines`: the `entity_name` of a 422. */
function entityNameOf(path: string): string {
  const collection = /\/entities\/([A-Za-z]+)/.exec(path)?.[1] ?? 'Entity';
  return collection.endsWith('s') ? collection.slice(0, -1) : collection;
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

/** Holds programmatic rules and every request a fault keeps waiting, so `close()` can end them all. */
export class FaultController {
  private rules: StoredRule[] = [];
  private readonly hung = new Set<ServerResponse>();
  private readonly sleeps = new Set<{ timer: NodeJS.Timeout; resolve: (completed: boolean) => void }>();

  /** Adds a rule for the following requests (checked in insertion order; the first match applies). */
  add(rule: FaultRule): void {
    const valid = parseFaultRule(rule);
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
      const headers: Record<string, string> = rule.retryAfter !== undefined ? { 'Retry-After': String(rule.retryAfter) } : {};
      const body =
        rule.missingField === undefined
          ? faultErrorBody(rule.status)
          : validationErrorBody(entityNameOf(req.path), randomUUID(), [missingFieldIssue(rule.missingField)]);
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
