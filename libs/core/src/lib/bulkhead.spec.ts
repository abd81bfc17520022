import { UnicrmError } from '@unicrm/model';
import { AccountBulkhead } from './bulkhead';

/** An operation that runs until the test ends it. */
function held(): { run: () => Promise<string>; end: (value: string) => void; started: boolean } {
  let end: (value: string) => void = () => undefined;
  const op = {
    started: false,
    run: () =>
      new Promise<string>((resolve) => {
        op.started = true;
        end = resolve;
      }),
    end: (value: string) => end(value),
  };
  return op;
}

const settled = async (promise: Promise<unknown>) => {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
};

describe('AccountBulkhead', () => {
  it('runs up to maxInFlight per account, queues maxQueued more in order, and refuses the rest with 429', async () => {
    const bulkhead = new AccountBulkhead({ bulkhead: { maxInFlight: 2, maxQueued: 1 } });
    const ops = [held(), held(), held()];
    const running = ops.map((op) => bulkhead.run('a', op.run));
    expect(ops.map((op) => op.started)).toEqual([true, true, false]);
    expect(bulkhead.load('a')).toEqual({ running: 2, waiting: 1 });
    const refused = bulkhead.run('a', async () => 'never');
    const error = (await refused.catch((e: unknown) => e)) as UnicrmError;
    expect(error).toMatchObject({ statusCode: 429, headers: { 'retry-after': '1' }, isRemote: false });
    expect(error.message).toBe(
      'This integrated account already has 2 requests in flight to its provider and 1 waiting, the most unicrm allows per account ' +
        '(UNICRM_MAX_IN_FLIGHT_PER_ACCOUNT, UNICRM_MAX_QUEUED_PER_ACCOUNT). Retry after 1 s.',
    );
    // Another account is not affected.
    await expect(bulkhead.run('b', async () => 'b done')).resolves.toBe('b done');
    ops[0]?.end('first');
    await expect(running[0]).resolves.toBe('first');
    expect(ops[2]?.started).toBe(true);
    ops[1]?.end('second');
    ops[2]?.end('third');
    await expect(Promise.all(running)).resolves.toEqual(['first', 'second', 'third']);
    expect(bulkhead.load('a')).toEqual({ running: 0, waiting: 0 });
  });

  it('frees the slot of an operation that fails', async () => {
    const bulkhead = new AccountBulkhead({ bulkhead: { maxInFlight: 1, maxQueued: 0 } });
    await expect(bulkhead.run('a', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(bulkhead.run('a', async () => 'ok')).resolves.toBe('ok');
  });

  it('stops waiting when the signal aborts, with its reason, and never runs the operation', async () => {
    const bulkhead = new AccountBulkhead({ bulkhead: { maxInFlight: 1, maxQueued: 5 } });
    const first = held();
    const running = bulkhead.run('a', first.run);
    const controller = new AbortController();
    let ran = false;
    const waiting = bulkhead.run(
      'a',
      async () => {
        ran = true;
        return 'late';
      },
      controller.signal,
    );
    expect(await settled(waiting)).toBe(false);
    const reason = new UnicrmError(504, 'deadline');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(bulkhead.load('a')).toEqual({ running: 1, waiting: 0 });
    first.end('done');
    await running;
    expect(ran).toBe(false);
    expect(bulkhead.load('a')).toEqual({ running: 0, waiting: 0 });
  });

  it('does not limit with maxInFlight 0', async () => {
    const bulkhead = new AccountBulkhead({ bulkhead: { maxInFlight: 0, maxQueued: 0 } });
    const ops = Array.from({ length: 50 }, () => held());
    const running = ops.map((op) => bulkhead.run('a', op.run));
    expect(ops.every((op) => op.started)).toBe(true);
    for (const op of ops) op.end('x');
    await Promise.all(running);
  });
});
