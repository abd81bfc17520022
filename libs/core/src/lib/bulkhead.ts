import 'reflect-metadata';
import { TOKENS, UnicrmError } from '@unicrm/model';
import { inject, injectable } from 'tsyringe';
import type { BulkheadLimits } from './config';

interface Compartment {
  running: number;
  /** Operations waiting for a slot, oldest first. */
  waiting: Array<() => void>;
}

/** `Retry-After` (seconds) of a 429 from the bulkhead. */
export const BULKHEAD_RETRY_AFTER_SECONDS = 1;

/**
 * A bulkhead per integrated account (issue 12: one tenant's slow CRM must not slow the others). All accounts on one
 * provider host share one undici pool of 128 connections; an account may hold at most `maxInFlight` operations
 * towards its provider at once, and `maxQueued` more wait (first come, first served) for one of its slots. Past
 * both: 429 with `Retry-After`, at once. A waiting operation stops waiting when its `signal` aborts (its deadline):
 * it then rejects with the signal's reason and was never sent. In memory, per process.
 */
@injectable()
export class AccountBulkhead {
  private readonly compartments = new Map<string, Compartment>();

  constructor(@inject(TOKENS.Config) private readonly config: { bulkhead: BulkheadLimits }) {}

  /**
   * Runs `operation` in the compartment of `account` (any string naming one account: environment and id).
   * @throws UnicrmError 429 (not remote) when the account's slots and queue are full; the signal's reason when it
   *   aborts while waiting; else whatever `operation` throws
   */
  async run<T>(account: string, operation: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const { maxInFlight, maxQueued } = this.config.bulkhead;
    if (maxInFlight <= 0) return operation();
    let compartment = this.compartments.get(account);
    if (!compartment) {
      compartment = { running: 0, waiting: [] };
      this.compartments.set(account, compartment);
    }
    if (compartment.running >= maxInFlight) {
      if (compartment.waiting.length >= maxQueued) throw this.full(maxInFlight, maxQueued);
      await this.wait(compartment, signal);
    } else {
      compartment.running += 1;
    }
    try {
      return await operation();
    } finally {
      this.leave(account, compartment);
    }
  }

  /** How many operations of `account` are running and waiting (for tests and diagnostics). */
  load(account: string): { running: number; waiting: number } {
    const compartment = this.compartments.get(account);
    return { running: compartment?.running ?? 0, waiting: compartment?.waiting.length ?? 0 };
  }

  /** Waits for a slot; the slot is handed over by {@link leave} (running stays counted). */
  private wait(compartment: Compartment, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = () => {
        const at = compartment.waiting.indexOf(admit);
        if (at >= 0) compartment.waiting.splice(at, 1);
        reject(signal?.reason);
      };
      const admit = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      compartment.waiting.push(admit);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private leave(account: string, compartment: Compartment): void {
    const next = compartment.waiting.shift();
    if (next) {
      next();
      return;
    }
    compartment.running -= 1;
    if (compartment.running === 0) this.compartments.delete(account);
  }

  private full(maxInFlight: number, maxQueued: number): UnicrmError {
    return new UnicrmError(
      429,
      `This integrated account already has ${maxInFlight} requests in flight to its provider and ${maxQueued} waiting, ` +
        `the most unicrm allows per account (UNICRM_MAX_IN_FLIGHT_PER_ACCOUNT, UNICRM_MAX_QUEUED_PER_ACCOUNT). ` +
        `Retry after ${BULKHEAD_RETRY_AFTER_SECONDS} s.`,
      { truto_error_insight: { rate_limit_error: { description: "unicrm's own limit of concurrent requests per integrated account" } } },
      { 'retry-after': String(BULKHEAD_RETRY_AFTER_SECONDS) },
    );
  }
}
