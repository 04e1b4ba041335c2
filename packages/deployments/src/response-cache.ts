/**
 * ResponseCache: an exact-match cache in front of any LLM deployment. The key is the request's model,
 * prompt (or messages, or token ids) and every sampling parameter, canonically serialised; only
 * deterministic requests (temperature 0, or a seed) are cached by default, so a sampled request is
 * never answered from the cache. Entries live in an LRU bounded by count and bytes, with a TTL; hit,
 * miss and bypass counts go to the replica's prom-client registry (collectMetrics(), as LLMServer).
 *
 * ```ts
 * @deployment() class Cache extends ResponseCache {}
 * export const app = Cache.bind(Llm.bind({ model }), { ttlMs: 60_000 });
 * ```
 */
import type { DeploymentHandle } from '@flotilla/core';
import { Counter, Gauge, Registry } from 'prom-client';

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

/** The request fields that make up the key; every other field (api_key, user, …) is left out. */
const KEY_FIELDS = [
  'model',
  'prompt',
  'messages',
  'prompt_token_ids',
  'max_tokens',
  'temperature',
  'top_p',
  'top_k',
  'min_p',
  'n',
  'stop',
  'seed',
  'logprobs',
  'presence_penalty',
  'frequency_penalty',
  'repetition_penalty',
  'ignore_eos',
] as const;

/** Canonical key of a generate request (fields in a fixed order, absent ones omitted). */
export function cacheKey(req: Record<string, unknown>): string {
  const parts: unknown[] = [];
  for (const f of KEY_FIELDS) parts.push(req[f] === undefined ? null : req[f]);
  return JSON.stringify(parts);
}

/** Deterministic: greedy (temperature 0) or seeded. The gRPC/OpenAI default temperature is 1, so absent means sampled. */
export function isDeterministic(req: Record<string, unknown>): boolean {
  return req.temperature === 0 || (typeof req.seed === 'number' && Number.isInteger(req.seed));
}

export interface ResponseCacheOptions extends Omit<LruTtlOptions, 'now'> {
  /** Downstream method called with the request. Default 'grpcGenerate' (LLMServer's). */
  method?: string;
  /** Cache seeded requests too (they are reproducible on the same engine). Default true. */
  cacheSeeded?: boolean;
}

export class ResponseCache {
  private readonly cache: LruTtlCache<string>;
  private readonly method: string;
  private readonly cacheSeeded: boolean;
  private readonly registry = new Registry();
  private readonly lookups: Counter<'result'>;

  constructor(
    private readonly llm: DeploymentHandle,
    options: ResponseCacheOptions = {},
  ) {
    this.cache = new LruTtlCache(options);
    this.method = options.method ?? 'grpcGenerate';
    this.cacheSeeded = options.cacheSeeded ?? true;
    const registers = [this.registry];
    this.lookups = new Counter({
      name: 'flotilla_response_cache_lookups_total',
      help: 'Cache lookups by result: hit, miss, or bypass (not cacheable).',
      labelNames: ['result'],
      registers,
    });
    const cache = this.cache;
    // Registered in this replica's registry; read on each scrape.
    new Gauge({
      name: 'flotilla_response_cache_entries',
      help: 'Responses held.',
      registers,
      collect() {
        this.set(cache.size);
      },
    });
  }

  /** The downstream response, from the cache when an identical deterministic request was answered before. */
  async generate(req: Record<string, unknown>): Promise<unknown> {
    const cacheable = req.temperature === 0 || (this.cacheSeeded && isDeterministic(req));
    if (!cacheable) {
      this.lookups.inc({ result: 'bypass' });
      return this.llm.remote(this.method, [req]);
    }
    const key = cacheKey(req);
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      this.lookups.inc({ result: 'hit' });
      // Stored serialised: a hit is byte-identical to the first answer and callers cannot mutate the entry.
      return JSON.parse(hit);
    }
    this.lookups.inc({ result: 'miss' });
    const res = await this.llm.remote(this.method, [req]);
    const text = JSON.stringify(res);
    this.cache.set(key, text, text.length * 2);
    return res;
  }

  /** Hit/miss/bypass counts and entries (for tests and dashboards). */
  async cacheStats(): Promise<{ hits: number; misses: number; bypasses: number; entries: number }> {
    const v = (await this.lookups.get()).values;
    const of = (r: string) => v.find((x) => x.labels.result === r)?.value ?? 0;
    return { hits: of('hit'), misses: of('miss'), bypasses: of('bypass'), entries: this.cache.size };
  }

  /** Replica metrics for the proxy's /metrics (prom-client JSON), as LLMServer.collectMetrics(). */
  async collectMetrics(): Promise<unknown[]> {
    return this.registry.getMetricsAsJSON();
  }
}
