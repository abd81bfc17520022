/**
 * A bounded in-memory cache whose entries expire, with single flight: concurrent `get`s of a missing key share one
 * load. For values a connector may show slightly stale, e.g. a pipeline's name beside its stages (the Pipedrive
 * issue: "the name read once and cached per account with a bound"). Durations in milliseconds.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();
  private readonly loading = new Map<string, Promise<V>>();

  /**
   * @param ttlMs how long a loaded value is served
   * @param maxEntries past this many entries the oldest one is dropped
   * @param now the clock (tests fix it)
   */
  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The fresh value of `key`, if any (never loads). */
  peek(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /**
   * The value of `key`: the cached one while fresh, else `load()`'s, shared with every concurrent caller of the same
   * key. A failed load is not cached (each waiting caller gets its error; the next call loads again).
   */
  get(key: string, load: () => Promise<V>): Promise<V> {
    const cached = this.peek(key);
    if (cached !== undefined) return Promise.resolve(cached);
    const pending = this.loading.get(key);
    if (pending) return pending;
    const flight = load().then(
      (value) => {
        this.loading.delete(key);
        this.set(key, value);
        return value;
      },
      (error: unknown) => {
        this.loading.delete(key);
        throw error;
      },
    );
    this.loading.set(key, flight);
    return flight;
  }

  /** Stores a value (e.g. one just read anyway). */
  set(key: string, value: V): void {
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(key, { value, expiresAt: this.now() + this.ttlMs });
  }

  /** Forgets a key (after unicrm itself changed it). */
  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Number of entries held (expired ones included until touched). */
  get size(): number {
    return this.entries.size;
  }
}
