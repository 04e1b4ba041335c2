/**
 * LoRA adapters around an engine's requests: a request takes a lease on its adapter before it is
 * registered (an unknown adapter throws there, synchronously), goes to the scheduler on the lease's
 * slot once the adapter is resident (it waits unscheduled while it loads), and releases the lease
 * when it ends — or at once, when it ended (aborted, failed, disposed) while the adapter loaded.
 * Also the engine's adapter admin calls, over the AdapterManager when the model has LoRA slots.
 */
import type { RequestState } from '../request-state.js';
import type { AdapterInfo, AdapterLease, AdapterManager } from './adapter-manager.js';
import { AdapterConfigError, AdapterNotFoundError } from './errors.js';

/** A lease now (resident adapter), later (it loads first), or none (the request runs on the base model). */
export type PendingLease = AdapterLease | Promise<AdapterLease> | null;

export class RequestLeases {
  /** Null when the model was loaded without LoRA slots (maxLoras 0). */
  readonly adapters: AdapterManager | null;

  constructor(adapters: AdapterManager | null) {
    this.adapters = adapters;
  }

  /** AdapterNotFoundError unless `name` is loaded (prepare()'s check). */
  check(name: string): void {
    if (!this.adapters?.has(name)) throw new AdapterNotFoundError(name);
  }

  /** Leases `name` for a request about to be registered: AdapterNotFoundError when unknown. No lease for no adapter. */
  take(name: string | undefined): PendingLease {
    if (name === undefined) return null;
    if (!this.adapters) throw new AdapterNotFoundError(name);
    return this.adapters.acquire(name);
  }

  /**
   * Calls start() once `lease` is held — now, or after the adapter loads — with the request's samples on
   * the lease's slot and its release set for when the request ends. Should the request have ended
   * meanwhile (isLive() false) the lease is released instead; a failed load fails a live request.
   */
  startWith(
    req: RequestState,
    lease: PendingLease,
    isLive: () => boolean,
    start: () => void,
    fail: (err: Error) => void,
  ): void {
    if (!(lease instanceof Promise)) {
      if (lease) this.bind(req, lease);
      start();
      return;
    }
    lease.then(
      (held) => {
        if (!isLive()) {
          this.adapters!.release(held);
          return;
        }
        this.bind(req, held);
        start();
      },
      (err: Error) => isLive() && fail(err),
    );
  }

  /** Loads a PEFT adapter directory under `name`; AdapterConfigError when the engine has no slots. */
  load(name: string, path: string): Promise<AdapterInfo> {
    if (!this.adapters)
      throw new AdapterConfigError('this engine has no LoRA slots (load the model with maxLoras > 0)');
    return this.adapters.load(name, path);
  }

  unload(name: string): Promise<void> {
    if (!this.adapters) throw new AdapterNotFoundError(name);
    return this.adapters.unload(name);
  }

  list(): AdapterInfo[] {
    return this.adapters?.list() ?? [];
  }

  private bind(req: RequestState, lease: AdapterLease): void {
    req.releaseAdapter = () => this.adapters!.release(lease);
    for (const s of req.samples) {
      s.seq.loraSlot = lease.slot;
      s.seq.cacheRoot = lease.cacheRoot;
    }
  }
}
