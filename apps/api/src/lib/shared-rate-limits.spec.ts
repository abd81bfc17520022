import type { RateLimitCounterStore, RateLimitHit } from '@unicrm/model';
import pino from 'pino';
import { Writable } from 'node:stream';
import { createRateLimiters } from './front-door';

/** Shared counters in memory, with a switch that makes every call fail as an unreachable database would. */
class FakeShared implements RateLimitCounterStore {
  down = false;
  readonly counts = new Map<string, number>();
  async increment(key: string, windowMs: number): Promise<RateLimitHit> {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    const hits = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, hits);
    return { hits, resetAt: new Date(Date.now() + windowMs) };
  }
  async get(key: string): Promise<RateLimitHit | undefined> {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    const hits = this.counts.get(key);
    return hits === undefined ? undefined : { hits, resetAt: new Date(Date.now() + 10_000) };
  }
}

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'warn' },
    new Writable({
      write(chunk: Buffer, _e, done) {
        lines.push(JSON.parse(chunk.toString()));
        done();
      },
    }),
  );
  return { logger, lines };
}

describe('rate limits on shared counters (several nodes)', () => {
  it('counts in the shared store, each limit under its own key prefix', async () => {
    const shared = new FakeShared();
    const { logger } = capture();
    const limits = createRateLimiters({ perToken: 3, perAccount: 2, windowMs: 10_000 }, { shared: { store: shared, logger } });
    expect((await limits.perToken?.hit('tok-1'))?.remaining).toBe(2);
    await limits.perAccount?.hit('env:acc-1');
    expect(shared.counts).toEqual(new Map([['token:tok-1', 1], ['account:env:acc-1', 1]]));
    // Another node's requests count too: the store already holds them.
    shared.counts.set('token:tok-1', 3);
    expect((await limits.perToken?.hit('tok-1'))?.exceeded).toBe(true);
    expect((await limits.perToken?.peek('tok-1'))?.hits).toBe(4);
    limits.perToken?.close();
    limits.perAccount?.close();
  });

  it('fails open while the store is unreachable: counts this node in memory, and says so once', async () => {
    const shared = new FakeShared();
    shared.down = true;
    const { logger, lines } = capture();
    const limits = createRateLimiters({ perToken: 2, perAccount: 0, windowMs: 10_000 }, { shared: { store: shared, logger } });
    const counts = [];
    for (let i = 0; i < 3; i++) counts.push(await limits.perToken?.hit('tok-1'));
    // Still limited, per node: the third request of the window is over the limit of 2.
    expect(counts.map((c) => c?.exceeded)).toEqual([false, false, true]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.filter((l) => String(l.msg).includes('shared rate-limit counters unreachable'))).toHaveLength(1);
    shared.down = false;
    expect((await limits.perToken?.hit('tok-1'))?.hits).toBe(1);
    limits.perToken?.close();
  });
});
