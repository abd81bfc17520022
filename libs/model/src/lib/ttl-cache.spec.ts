import { TtlCache } from './ttl-cache';

describe('TtlCache', () => {
  it('serves a value until it expires, then loads again', async () => {
    let now = 1_000;
    const cache = new TtlCache<string>(100, 10, () => now);
    let loads = 0;
    const load = async () => `v${++loads}`;
    expect(await cache.get('a', load)).toBe('v1');
    now += 99;
    expect(await cache.get('a', load)).toBe('v1');
    now += 1;
    expect(await cache.get('a', load)).toBe('v2');
  });

  it('shares one load between concurrent callers, and caches no failure', async () => {
    const cache = new TtlCache<string>(1_000, 10);
    let release!: (value: string) => void;
    let loads = 0;
    const load = () => {
      loads++;
      return new Promise<string>((resolve) => (release = resolve));
    };
    const both = Promise.all([cache.get('k', load), cache.get('k', load)]);
    release('x');
    expect(await both).toEqual(['x', 'x']);
    expect(loads).toBe(1);
    await expect(cache.get('f', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(await cache.get('f', async () => 'up')).toBe('up');
  });

  it('holds at most maxEntries, dropping the oldest', () => {
    const cache = new TtlCache<number>(1_000, 2);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3);
    expect(cache.size).toBe(2);
    expect(cache.peek('a')).toBeUndefined();
    expect(cache.peek('c')).toBe(3);
  });
});
