import type { Clock, HttpTransport, Logger, WebhookStore } from '@unicrm/model';
import { configFromEnv } from './config';
import { WebhookDispatcher } from './webhooks';

// The delivery log's retention: each worker prunes it about once an hour, in batches, never an event being retried
// (the store's condition, held by the store conformance suite).
describe('WebhookDispatcher pruning', () => {
  it('prunes events older than the retention once an hour, in batches of 1000 until a batch is short', async () => {
    let now = new Date('2026-06-01T12:00:00.000Z');
    const calls: Array<[string, number]> = [];
    const batches = [1000, 1000, 7, 0];
    const store = {
      claimDue: async () => [],
      prune: async (before: string, limit: number) => {
        calls.push([before, limit]);
        return batches.shift() ?? 0;
      },
    } as unknown as WebhookStore;
    const clock: Clock = { now: () => now };
    const logged: unknown[] = [];
    const logger = { info: (...args: unknown[]) => logged.push(args), warn: () => undefined, debug: () => undefined, error: () => undefined } as unknown as Logger;
    const config = { ...configFromEnv({ UNICRM_WEBHOOK_RETENTION_MS: '86400000' }) };
    const worker = new WebhookDispatcher(store, {} as HttpTransport, clock, logger, config as never);

    await worker.runOnce();
    expect(calls).toEqual([
      ['2026-05-31T12:00:00.000Z', 1000],
      ['2026-05-31T12:00:00.000Z', 1000],
      ['2026-05-31T12:00:00.000Z', 1000],
    ]);
    expect(logged).toEqual([[{ deleted: 2007, before: '2026-05-31T12:00:00.000Z' }, 'webhook worker: pruned the delivery log']]);
    now = new Date('2026-06-01T12:59:00.000Z');
    await worker.runOnce();
    expect(calls).toHaveLength(3); // not again within the hour
    now = new Date('2026-06-01T13:00:00.000Z');
    await worker.runOnce();
    expect(calls.at(-1)).toEqual(['2026-05-31T13:00:00.000Z', 1000]);
  });

  it('keeps 30 days by default', () => {
    expect(configFromEnv({}).webhooks.retentionMs).toBe(30 * 24 * 3600 * 1000);
    expect(() => configFromEnv({ UNICRM_WEBHOOK_RETENTION_MS: 'soon' })).toThrow(/UNICRM_WEBHOOK_RETENTION_MS/);
  });
});
