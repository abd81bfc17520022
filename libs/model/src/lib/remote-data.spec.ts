import { mergeRemoteData } from './remote-data';

describe('mergeRemoteData', () => {
  it('merges plain objects recursively and lets remote_data win', () => {
    const mapped = { name: 'A', nested: { a: 1, b: { c: 2 } }, list: [1, 2] };
    const remote = { name: 'B', nested: { b: { d: 3 } }, list: [9], extra: null };
    expect(mergeRemoteData(mapped, remote)).toEqual({
      name: 'B',
      nested: { a: 1, b: { c: 2, d: 3 } },
      list: [9],
      extra: null,
    });
    expect(mapped).toEqual({ name: 'A', nested: { a: 1, b: { c: 2 } }, list: [1, 2] });
  });

  it('replaces an object with a scalar and a scalar with an object', () => {
    expect(mergeRemoteData({ a: { x: 1 }, b: 1 }, { a: 'flat', b: { y: 2 } })).toEqual({ a: 'flat', b: { y: 2 } });
  });

  it('has identities on both sides', () => {
    const body = { a: { b: 1 } };
    expect(mergeRemoteData(body, {})).toEqual(body);
    expect(mergeRemoteData(body, undefined)).toEqual(body);
    expect(mergeRemoteData({}, body)).toEqual(body);
  });

  it('skips prototype keys', () => {
    const hostile = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, "ok": 1}');
    const merged = mergeRemoteData({}, hostile);
    expect(merged).toEqual({ ok: 1 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
  });
});
