/** An LRU map bounded by entries and bytes, with a TTL (ResponseCache's store). */
export interface LruTtlOptions {
  /** Most entries. Default 1000. */
  maxEntries?: number;
  /** Most bytes over all entries (as `sizeOf` counts them). Default 64 MiB. */
  maxBytes?: number;
  /** Entry lifetime, ms; 0 = forever. Default 300000 (5 min). */
  ttlMs?: number;
  /** Time source in ms. Default Date.now. */
  now?: () => number;
}

/** LRU map with a size bound and a TTL, as pure data structure over an injected clock. */
export class LruTtlCache<V> {
  private readonly map = new Map<string, { value: V; bytes: number; expires: number }>();
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private totalBytes = 0;

  constructor(opts: LruTtlOptions = {}) {
    this.maxEntries = opts.maxEntries ?? 1000;
    this.maxBytes = opts.maxBytes ?? 64 * 1024 * 1024;
    this.ttlMs = opts.ttlMs ?? 300_000;
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.map.size;
  }
  get bytes(): number {
    return this.totalBytes;
  }

  /** The live value (now most recently used), or undefined; an expired entry is dropped here. */
  get(key: string): V | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.expires <= this.now()) {
      this.delete(key);
      return undefined;
    }
    // Map keeps insertion order: re-inserting moves the entry to the most recent end.
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  /** Stores a value of `bytes` (too big for the cache alone: not stored), evicting least recently used entries. */
  set(key: string, value: V, bytes = 0): boolean {
    this.delete(key);
    if (bytes > this.maxBytes || this.maxEntries <= 0) return false;
    this.map.set(key, { value, bytes, expires: this.ttlMs > 0 ? this.now() + this.ttlMs : Infinity });
    this.totalBytes += bytes;
    while (this.map.size > this.maxEntries || this.totalBytes > this.maxBytes)
      this.delete(this.map.keys().next().value!);
    return true;
  }

  delete(key: string): boolean {
    const e = this.map.get(key);
    if (!e) return false;
    this.totalBytes -= e.bytes;
    return this.map.delete(key);
  }
}
