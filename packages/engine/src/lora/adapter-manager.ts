/**
 * The engine's LoRA adapters: a registry of loaded adapters (name → PEFT directory, checked against the
 * base at load) and their residency in the native slots (AdapterSlots: LRU, pins). A request leases its
 * adapter for its lifetime: resident → at once; else it is loaded into a free or evicted idle slot
 * first (the lease resolves after the native load), or waits until some slot's requests are done.
 * Each registration gets its own prefix-cache root, so KV blocks are never shared across adapters
 * (nor with the base, nor with an earlier adapter of the same name).
 */
import { hashBlock } from '../block-manager.js';
import type { NativeLoraSpec, NativeModelConfig } from '../native/native-types.js';
import { AdapterSlots } from './adapter-slots.js';
import { AdapterConfigError, AdapterMismatchError, AdapterNotFoundError } from './errors.js';
import { type PeftAdapter, readPeftAdapter } from './peft-adapter.js';

/** The part of NativeModel the manager calls (a fake in unit tests). */
export interface LoraModel {
  loadLora?(slot: number, spec: NativeLoraSpec): Promise<void>;
  unloadLora?(slot: number): Promise<void>;
}

export interface AdapterInfo {
  name: string;
  /** The adapter directory, absolute. */
  path: string;
  rank: number;
  scale: number;
  targetModules: string[];
  baseModel?: string;
  /** Whether its weights are in a native slot now. */
  resident: boolean;
}

/** A request's hold on an adapter: the slot its rows run with and its prefix-cache root. */
export interface AdapterLease {
  readonly name: string;
  readonly slot: number;
  readonly cacheRoot: number;
}

interface Registered {
  name: string;
  adapter: PeftAdapter;
  /** Key in AdapterSlots: unique per registration. */
  key: string;
  cacheRoot: number;
  removed: boolean;
}

export interface AdapterStats {
  /** Native loads (at registration and on a miss) and evictions of idle adapters. */
  loads: number;
  evictions: number;
}

export class AdapterManager {
  readonly stats: AdapterStats = { loads: 0, evictions: 0 };
  private readonly slots: AdapterSlots;
  private readonly registry = new Map<string, Registered>();
  private readonly byKey = new Map<string, Registered>();
  /** Slot → its native load in flight. */
  private readonly loading = new Map<number, Promise<void>>();
  /** Slot → the last native call on it: loads and unloads of a slot run in the order they were issued. */
  private readonly ops = new Map<number, Promise<unknown>>();
  private waiters: (() => void)[] = [];
  /** Adapter name → requests waiting for a slot for it (every slot pinned). */
  private readonly slotWaits = new Map<string, number>();
  private nextUid = 1;

  constructor(
    private readonly model: LoraModel,
    private readonly config: NativeModelConfig,
    readonly maxLoras: number,
    readonly maxRank: number,
  ) {
    this.slots = new AdapterSlots(maxLoras);
  }

  has(name: string): boolean {
    return this.registry.has(name);
  }

  list(): AdapterInfo[] {
    return [...this.registry.values()].map((r) => this.info(r));
  }

  /** The adapter in native slot `slot` (a sequence's loraSlot), or null when the slot is empty. */
  nameInSlot(slot: number): string | null {
    const key = this.slots.nameIn(slot);
    return key !== null ? (this.byKey.get(key)?.name ?? null) : null;
  }

  /** Adapters whose requests wait for a slot to free (every slot pinned), once each. */
  waitingForSlot(): string[] {
    return [...this.slotWaits.keys()];
  }

  /**
   * Reads and checks the adapter at `dir` (AdapterMismatchError naming the tensor at fault) and
   * registers it under `name` (AdapterConfigError when taken); it is made resident now when a slot is
   * free or idle, else on first use.
   */
  async load(name: string, dir: string): Promise<AdapterInfo> {
    if (!/^[\w.:/@-]{1,256}$/.test(name))
      throw new AdapterConfigError(`adapter name '${name}': use 1-256 letters, digits and _ . : / @ -`);
    if (this.registry.has(name)) throw new AdapterConfigError(`adapter '${name}' is already loaded`);
    const adapter = readPeftAdapter(dir, this.config, this.maxRank);
    const uid = this.nextUid++;
    const reg: Registered = {
      name,
      adapter,
      key: `#${uid}`,
      cacheRoot: hashBlock(0, Int32Array.of(0x4c6f5241, uid), 0, 2) || 1,
      removed: false,
    };
    this.registry.set(name, reg);
    this.byKey.set(reg.key, reg);
    const lease = this.tryAcquire(reg);
    if (lease) {
      try {
        this.release(await lease);
      } catch (err) {
        this.registry.delete(name);
        this.byKey.delete(reg.key);
        throw err;
      }
    }
    return this.info(reg);
  }

  /**
   * Unregisters `name` (AdapterNotFoundError when unknown): new requests for it fail at once; its slot
   * is emptied now if no request uses it, else when the last one ends.
   */
  async unload(name: string): Promise<void> {
    const reg = this.registry.get(name);
    if (!reg) throw new AdapterNotFoundError(name);
    this.registry.delete(name);
    reg.removed = true;
    const slot = this.slots.slotOf(reg.key);
    if (slot !== undefined && this.slots.pinCount(slot) === 0) await this.free(reg, slot);
    this.wake();
  }

  /** Leases `name` for a request: synchronously when resident, else once loaded. AdapterNotFoundError when unknown. */
  acquire(name: string): AdapterLease | Promise<AdapterLease> {
    const reg = this.registry.get(name);
    if (!reg) throw new AdapterNotFoundError(name);
    return this.tryAcquire(reg) ?? this.wait(reg);
  }

  /** Ends a lease (once per lease). */
  release(lease: AdapterLease): void {
    this.slots.unpin(lease.slot);
    const key = this.slots.nameIn(lease.slot);
    const reg = key !== null ? this.byKey.get(key) : undefined;
    // No caller waits on this unload: when it fails (the model was disposed as the last request ended)
    // the slot is already cleared in the table, and the next load into it overwrites the native slot.
    if (reg?.removed && this.slots.pinCount(lease.slot) === 0) this.free(reg, lease.slot).catch(() => {});
    this.wake();
  }

  /** A lease now or after the native load; null when every slot is pinned. */
  private tryAcquire(reg: Registered): AdapterLease | Promise<AdapterLease> | null {
    const p = this.slots.place(reg.key);
    if (!p) return null;
    const lease: AdapterLease = { name: reg.name, slot: p.slot, cacheRoot: reg.cacheRoot };
    if (!p.load) {
      const inFlight = this.loading.get(p.slot);
      return inFlight
        ? inFlight.then(
            () => lease,
            (err) => this.failedLease(p.slot, err),
          )
        : lease;
    }
    if (p.evicted) {
      this.stats.evictions++;
      this.forget(p.evicted);
    }
    if (!this.model.loadLora) throw new AdapterConfigError('this model has no LoRA slots (the addon lacks loadLora)');
    this.stats.loads++;
    const loadLora = this.model.loadLora.bind(this.model);
    const load = this.onSlot(p.slot, () => loadLora(p.slot, reg.adapter.native)).catch(
      (err: Error & { code?: string }) => {
        this.slots.clear(reg.key);
        throw new AdapterMismatchError(reg.adapter.path, `the engine rejected it: ${err.message}`);
      },
    );
    const done = load.finally(() => this.loading.delete(p.slot));
    this.loading.set(p.slot, done);
    return done.then(
      () => lease,
      (err) => this.failedLease(p.slot, err),
    );
  }

  private failedLease(slot: number, err: unknown): never {
    this.slots.unpin(slot);
    this.wake();
    throw err;
  }

  private wait(reg: Registered): Promise<AdapterLease> {
    this.slotWaits.set(reg.name, (this.slotWaits.get(reg.name) ?? 0) + 1);
    const done = () => {
      const n = (this.slotWaits.get(reg.name) ?? 1) - 1;
      if (n > 0) this.slotWaits.set(reg.name, n);
      else this.slotWaits.delete(reg.name);
    };
    return new Promise<AdapterLease>((resolve, reject) => {
      const retry = () => {
        if (reg.removed) return reject(new AdapterNotFoundError(reg.name));
        const lease = this.tryAcquire(reg);
        if (!lease) return this.waiters.push(retry);
        Promise.resolve(lease).then(resolve, reject);
      };
      this.waiters.push(retry);
    }).finally(done);
  }

  private wake(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const retry of waiting) retry();
  }

  /** An evicted registration that was unloaded meanwhile has nothing left to track. */
  private forget(key: string): void {
    const reg = this.byKey.get(key);
    if (reg?.removed) this.byKey.delete(key);
  }

  private async free(reg: Registered, slot: number): Promise<void> {
    this.slots.clear(reg.key);
    this.byKey.delete(reg.key);
    const unloadLora = this.model.unloadLora?.bind(this.model);
    if (unloadLora) await this.onSlot(slot, () => unloadLora(slot));
  }

  /** Runs a native call on `slot` after the calls issued before it on that slot. */
  private onSlot<T>(slot: number, call: () => Promise<T>): Promise<T> {
    const prev = this.ops.get(slot) ?? Promise.resolve();
    const next = prev.then(call, call);
    this.ops.set(
      slot,
      next.catch(() => {}),
    );
    return next;
  }

  private info(r: Registered): AdapterInfo {
    const a = r.adapter;
    return {
      name: r.name,
      path: a.path,
      rank: a.rank,
      scale: a.scale,
      targetModules: a.targetModules,
      ...(a.baseModel ? { baseModel: a.baseModel } : {}),
      resident: this.slots.slotOf(r.key) !== undefined && !this.loading.has(this.slots.slotOf(r.key)!),
    };
  }
}
