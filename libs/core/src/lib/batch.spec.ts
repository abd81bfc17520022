import { type BatchWrite, UnicrmError } from '@unicrm/model';
import { derivedItemKey, WriteCollector } from './batch';

const write = (name: string): BatchWrite => ({ method: 'create', body: { name } });

describe('WriteCollector', () => {
  it('sends a chunk when it is full, and the rest once every expected item has joined or left', async () => {
    const sent: string[][] = [];
    const collector = new WriteCollector(5, 2, async (writes) => {
      sent.push(writes.map((w) => String(w.body.name)));
      return writes.map((w) => ({ ok: true as const, result: { unified: { id: `id-${String(w.body.name)}` }, remote: { status: 200, bodyText: '', body: null } } }));
    });
    const a = collector.join(write('a'));
    const b = collector.join(write('b'));
    const c = collector.join(write('c'));
    collector.leave();
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent).toEqual([['a', 'b']]);
    const d = collector.join(write('d'));
    expect((await Promise.all([a, b, c, d])).map((r) => r.unified.id)).toEqual(['id-a', 'id-b', 'id-c', 'id-d']);
    expect(sent).toEqual([['a', 'b'], ['c', 'd']]);
  });

  it("settles every item of a chunk whose send throws at once, or answers too few results", async () => {
    const throwing = new WriteCollector(2, 10, () => {
      throw new UnicrmError(502, 'broke at once');
    });
    const results = await Promise.allSettled([throwing.join(write('a')), throwing.join(write('b'))]);
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as UnicrmError).message : 'fulfilled'))).toEqual(['broke at once', 'broke at once']);

    const short = new WriteCollector(2, 10, async () => [{ ok: true as const, result: { unified: { id: 'x' }, remote: { status: 200, bodyText: '', body: null } } }]);
    const [first, second] = await Promise.allSettled([short.join(write('a')), short.join(write('b'))]);
    expect(first.status).toBe('fulfilled');
    expect(second.status === 'rejected' && (second.reason as UnicrmError).statusCode).toBe(502);
  });
});

describe('derivedItemKey', () => {
  it('is the same for the same batch key and index, different otherwise, and a valid Idempotency-Key', () => {
    expect(derivedItemKey('k', 3)).toBe(derivedItemKey('k', 3));
    expect(derivedItemKey('k', 3)).not.toBe(derivedItemKey('k', 4));
    expect(derivedItemKey('k', 3)).not.toBe(derivedItemKey('l', 3));
    expect(derivedItemKey('x'.repeat(255), 99)).toMatch(/^[\x20-\x7e]{1,255}$/);
  });
});
