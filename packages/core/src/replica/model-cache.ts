/**
 * A replica's cache of multiplexed models (multiplexed.ts): at most `capacity` models by id, least
 * recently used evicted first. No I/O of its own: it calls the injected `load` on a miss and `dispose`
 * on an eviction, so the policy is tested with fakes (test/unit/multiplex-model-cache.test.ts).
 *
 * - A model is pinned from acquire() until its release(): the request using it is still running, so
 *   it is never evicted (loading past the limit leaves the cache over capacity until pins go; requests
 *   in flight never fail because another one needed room). A model still loading is pinned by its waiters.
 * - Eviction waits until the new model has loaded: a load that fails (an unknown id, a broken file)
 *   costs no other model its place, so clients naming bad ids cannot empty the cache. The price is
 *   memory for one model over capacity while a load runs; size the capacity for that.
 * - Concurrent misses of one id share one load; a failed load is not cached (the next request tries
 *   again), and every waiter gets the loader's error.
 */

export interface ModelCacheOptions<M> {
  /** Models kept loaded (one more while a load runs). At least 1. */
  capacity: number;
  load(id: string): Promise<M>;
  /** Runs once per evicted (or cleared) model, after nothing uses it. A throw is passed to onDisposeError. */
  dispose?(model: M, id: string): unknown;
  onDisposeError?(err: unknown, id: string): void;
}

export interface ModelLease<M> {
  model: M;
  /** Unpins the model; idempotent. */
  release(): void;
}

/** Cumulative counts since the cache was made. */
export interface ModelCacheCounters {
  /** Loads started (misses). */
  loads: number;
  /** Acquires served by a model already loaded or loading. */
  hits: number;
  loadFailures: number;
  evictions: number;
}

interface Slot<M> {
  id: string;
  /** Set once loaded. */
  model?: M;
  loading?: Promise<M>;
  pins: number;
  /** Larger is more recent. */
  usedAt: number;
}

export class ModelCache<M> {
  readonly counters: ModelCacheCounters = { loads: 0, hits: 0, loadFailures: 0, evictions: 0 };
  private readonly slots = new Map<string, Slot<M>>();
  private clock = 0;

  constructor(private readonly options: ModelCacheOptions<M>) {
    if (!Number.isInteger(options.capacity) || options.capacity < 1)
      throw new RangeError(`model cache capacity must be an integer >= 1, got ${options.capacity}`);
  }

  get capacity(): number {
    return this.options.capacity;
  }

  /** Loaded models' ids, most recently used first (what the replica reports; loading ones excluded). */
  ids(): string[] {
    return [...this.slots.values()]
      .filter((s) => s.loading === undefined)
      .sort((a, b) => b.usedAt - a.usedAt)
      .map((s) => s.id);
  }

  /** Whether `id` is loaded or loading. */
  has(id: string): boolean {
    return this.slots.has(id);
  }

  /** Pins of `id` (0 when absent): requests using it now. */
  pinsOf(id: string): number {
    return this.slots.get(id)?.pins ?? 0;
  }

  /** The model for `id`, loading it on a miss; pinned until the lease is released. */
  async acquire(id: string): Promise<ModelLease<M>> {
    let slot = this.slots.get(id);
    if (slot) this.counters.hits++;
    else slot = this.startLoad(id);
    slot.pins++;
    slot.usedAt = ++this.clock;
    let model: M;
    try {
      model = slot.loading ? await slot.loading : slot.model!;
    } catch (err) {
      slot.pins--;
      throw err;
    }
    let released = false;
    return {
      model,
      release: () => {
        if (released) return;
        released = true;
        slot.pins--;
        this.shrink(this.options.capacity);
      },
    };
  }

  /** Disposes every unpinned model (the replica is stopping); pinned ones stay with their requests. */
  async clear(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const slot of [...this.slots.values()])
      if (slot.pins === 0 && !slot.loading) waits.push(this.evict(slot, false));
    await Promise.all(waits);
  }

  private startLoad(id: string): Slot<M> {
    this.counters.loads++;
    const slot: Slot<M> = { id, pins: 0, usedAt: this.clock };
    slot.loading = (async () => this.options.load(id))().then(
      (model) => {
        slot.model = model;
        slot.loading = undefined;
        this.shrink(this.options.capacity);
        return model;
      },
      (err: unknown) => {
        this.counters.loadFailures++;
        if (this.slots.get(id) === slot) this.slots.delete(id);
        throw err;
      },
    );
    // Waiters handle the rejection; this keeps an unawaited failure from being reported as unhandled.
    slot.loading.catch(() => undefined);
    this.slots.set(id, slot);
    return slot;
  }

  /** Evicts unpinned loaded models, least recently used first, until at most `limit` remain (or none can go). */
  private shrink(limit: number): void {
    while (this.slots.size > limit) {
      let victim: Slot<M> | undefined;
      for (const s of this.slots.values())
        if (s.pins === 0 && !s.loading && (!victim || s.usedAt < victim.usedAt)) victim = s;
      if (!victim) return;
      void this.evict(victim);
    }
  }

  private async evict(slot: Slot<M>, counted = true): Promise<void> {
    this.slots.delete(slot.id);
    if (counted) this.counters.evictions++;
    try {
      await this.options.dispose?.(slot.model as M, slot.id);
    } catch (err) {
      this.options.onDisposeError?.(err, slot.id);
    }
  }
}
