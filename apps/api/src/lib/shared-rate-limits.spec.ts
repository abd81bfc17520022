import type { RateLimitCheck, RateLimitCounterStore, RateLimitHit } from '@unicrm/model';
import { ServerResponse, IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { createRateLimiters } from './front-door';
import { countRequest } from './middleware';

/** Shared counters in memory with the store's rule, and a switch that makes every call fail as an unreachable database. */
class FakeShared implements RateLimitCounterStore {
  down = false;
  calls = 0;
  readonly counts = new Map<string, number>();
  async increment(key: string, windowMs: number): Promise<RateLimitHit> {
    return (await this.count([{ key, windowMs, limit: Infinity }]))[0] as RateLimitHit;
  }
  async get(key: string): Promise<RateLimitHit | undefined> {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    const hits = this.counts.get(key);
    return hits === undefined ? undefined : { hits, resetAt: new Date(Date.now() + 10_000) };
  }
  async count(checks: ReadonlyArray<RateLimitCheck>): Promise<RateLimitHit[]> {
    this.calls++;
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    let over = false;
    return checks.map((check) => {
      const hits = (this.counts.get(check.key) ?? 0) + (over ? 0 : 1);
      if (!over) this.counts.set(check.key, hits);
      over ||= hits > check.limit;
      return { hits, resetAt: new Date(Date.now() + check.windowMs) };
    });
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

const response = () => new ServerResponse(new IncomingMessage(new Socket()));
const status = (promise: Promise<void>) => promise.then(() => 200, (error: { statusCode?: number }) => error.statusCode);

describe('rate limits on shared counters (several nodes)', () => {
  it('counts both limits in the shared store in one call, each under its own key prefix', async () => {
    const shared = new FakeShared();
    const { logger } = capture();
    const limits = createRateLimiters({ perToken: 3, perAccount: 2, windowMs: 10_000 }, { shared: { store: shared, logger } });
    const res = response();
    expect(await status(countRequest(limits, res, 'tok-1', 'env:acc-1'))).toBe(200);
    expect(shared.calls).toBe(1);
    expect(shared.counts).toEqual(new Map([['token:tok-1', 1], ['account:env:acc-1', 1]]));
    expect(res.getHeader('RateLimit-Remaining')).toBe('1');
    // Other nodes' requests count too: the store already holds them.
    shared.counts.set('account:env:acc-1', 2);
    expect(await status(countRequest(limits, response(), 'tok-1', 'env:acc-1'))).toBe(429);
    // Over the token's limit: the account is read, not counted.
    shared.counts.set('token:tok-1', 3);
    expect(await status(countRequest(limits, response(), 'tok-1', 'env:acc-1'))).toBe(429);
    expect(shared.counts.get('account:env:acc-1')).toBe(3);
    limits.perToken?.close();
    limits.perAccount?.close();
  });

  it('fails open while the store is unreachable: counts this node in memory, and says so once', async () => {
    const shared = new FakeShared();
    shared.down = true;
    const { logger, lines } = capture();
    const limits = createRateLimiters({ perToken: 2, perAccount: 0, windowMs: 10_000 }, { shared: { store: shared, logger } });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push(await status(countRequest(limits, response(), 'tok-1', undefined)));
    // Still limited, per node: the third request of the window is over the limit of 2.
    expect(statuses).toEqual([200, 200, 429]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.filter((l) => String(l.msg).includes('shared rate-limit counters unreachable'))).toHaveLength(1);
    shared.down = false;
    expect(await status(countRequest(limits, response(), 'tok-1', undefined))).toBe(200);
    expect(shared.counts.get('token:tok-1')).toBe(1);
    limits.perToken?.close();
  });
});
