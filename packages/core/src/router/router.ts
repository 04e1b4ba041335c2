/**
 * The router in a caller (an ingress handle, or the relay for a deployment's own handles): queues
 * requests when every replica is at maxOngoingRequests (up to maxQueuedRequests, then
 * BackPressureError), picks replicas with pow2-router.ts, and retries on another replica when one
 * rejects a request or dies before accepting it. Accepted calls are never retried (they may have
 * side effects); they fail with ActorDiedError. A stream whose replica died before it yielded anything
 * is retried (see retriesStream).
 */
import { ActorDiedError, BackPressureError, FlotillaError, UnavailableError } from '../errors.js';
import { isRetryable } from '../actor/rpc-peer.js';
import { abortReason, abortSourceOf, offAbort, onAbort, type AbortSource } from '../actor/cancellation.js';
import { chooseReplica, retryAfterS, type ReplicaLoad } from './pow2-router.js';
import { choosePrefixAware } from './prefix-aware-router.js';
import { chooseMultiplexed } from './multiplex-router.js';
import { ModelView } from './model-view.js';
import { CallKeys } from './call-keys.js';
import type { ActorRef } from '../actor/actor-ref.js';
import type { ResolvedCallOptions } from '../handle.js';
import type { RuntimeEvents } from '../runtime-events.js';
import type { MethodKind } from '../contract/routes.js';
import type { RoutingKeyFunction } from '../contract/deployment-options.js';

export interface RoutedReplica {
  id: string;
  /** `alive` (false once the actor is gone) tells its death from a relayed one; absent: unknown. */
  actor: Pick<ActorRef, 'call' | 'stream'> & { readonly alive?: boolean };
  maxOngoing: number;
}

export interface RouterOptions {
  app: string;
  deployment: string;
  caller: 'ingress' | 'replica';
  /** -1: unbounded. */
  maxQueuedRequests: number;
  /** 'prefix-aware': calls without a routingKey of their own are keyed by `routingKey`. Default 'pow2'. */
  routing?: 'pow2' | 'prefix-aware';
  /** The deployment class's static routingKey (routing-key.ts), used with routing 'prefix-aware'. Default: none. */
  routingKey?: RoutingKeyFunction;
  /** The deployment class's static multiplexedModelId (routing-key.ts), for calls that name no model. Default: none. */
  modelIdOf?: RoutingKeyFunction;
  events?: RuntimeEvents;
  random?: () => number;
}

/** Deaths before acceptance tolerated per request before giving up. */
const MAX_DEATH_RETRIES = 3;
/** Settings a new deployment spec may change on a live router (RouterSet re-reads them on each publish). */
export type RouterSettings = Pick<RouterOptions, 'maxQueuedRequests' | 'routing' | 'routingKey' | 'modelIdOf'>;

/** How long a replica that answered "full" is skipped by this caller. */
const FULL_BACKOFF_MS = 10;

interface Entry extends ReplicaLoad {
  actor: RoutedReplica['actor'];
  /** Models this caller believes the replica holds (multiplexed deployments only). */
  models?: ModelView;
}

/** A replica's report of its loaded multiplexed models (ids most recently used first). */
export interface ReplicaModelsReport {
  ids: readonly string[];
  capacity: number;
}

interface Waiter {
  /** The call's multiplexed model id: a queued call keeps it, so a holder that frees up takes it. */
  modelId: string | undefined;
  resolve(entry: Entry): void;
  reject(err: Error): void;
}

export class Router {
  private readonly replicas = new Map<string, Entry>();
  /** The values of `replicas`, kept as an array for pick(). */
  private list: Entry[] = [];
  private readonly waiters: Waiter[] = [];
  private unavailable: Error | undefined;
  private closedWith: Error | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private inFlightCount = 0;
  private idleWaiters: (() => void)[] = [];
  /** Keys derived from calls by the deployment class's statics (call-keys.ts). */
  private readonly keys: CallKeys;

  private readonly options: RouterOptions;

  constructor(options: RouterOptions) {
    this.options = { ...options };
    this.keys = new CallKeys(this.options);
  }

  /** Takes the settings of a new deployment spec (a rolling update may change the class or its options). */
  configure(settings: RouterSettings): void {
    this.options.maxQueuedRequests = settings.maxQueuedRequests;
    this.options.routing = settings.routing;
    this.options.routingKey = settings.routingKey;
    this.options.modelIdOf = settings.modelIdOf;
  }

  get queued(): number {
    return this.waiters.length;
  }
  get inFlight(): number {
    return this.inFlightCount;
  }

  /** The deployment's RUNNING replicas, from the controller. Counts of known replicas are kept. */
  setReplicas(list: readonly RoutedReplica[]): void {
    const ids = new Set(list.map((r) => r.id));
    for (const id of this.replicas.keys()) if (!ids.has(id)) this.replicas.delete(id);
    for (const r of list) {
      const known = this.replicas.get(r.id);
      if (known) known.maxOngoing = r.maxOngoing;
      else this.replicas.set(r.id, { id: r.id, actor: r.actor, maxOngoing: r.maxOngoing, inFlight: 0 });
    }
    this.list = [...this.replicas.values()];
    this.dispatch();
  }

  /** The replicas' reports of their loaded models (by replica id), as the controller last polled them. */
  setModels(reports: ReadonlyMap<string, ReplicaModelsReport>): void {
    const now = Date.now();
    for (const [id, report] of reports) {
      const entry = this.replicas.get(id);
      if (!entry) continue;
      entry.models ??= new ModelView();
      entry.models.report(report.ids, report.capacity, now);
    }
  }

  /** What this caller believes each replica holds, by replica id (for tests and benches). */
  modelViews(): Map<string, readonly string[]> {
    return new Map(this.list.map((e) => [e.id, e.models?.ids() ?? []]));
  }

  /** A FAILED deployment: queued and new requests fail with `err` until cleared with undefined. */
  setUnavailable(err: Error | undefined): void {
    this.unavailable = err;
    if (err) for (const w of this.waiters.splice(0)) w.reject(err);
  }

  /** Stops taking requests (they fail with `err`); requests already sent finish. */
  close(err: Error): void {
    this.closedWith = err;
    for (const w of this.waiters.splice(0)) w.reject(err);
    clearTimeout(this.retryTimer);
  }

  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.inFlightCount === 0 && this.waiters.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async call(method: string, args: unknown[], given: ResolvedCallOptions): Promise<unknown> {
    const opts = this.keys.withModelId(method, args, given);
    const started = performance.now();
    let error: unknown;
    this.inFlightCount++;
    try {
      for (let deaths = 0, requeue = false; ; requeue = true) {
        const entry = await this.acquire(
          abortSourceOf(opts),
          requeue,
          this.keys.routingKeyOf(method, args, opts),
          this.routedModelId(given, opts),
        );
        try {
          return await entry.actor.call(method, args, opts);
        } catch (err) {
          if (!isRetryable(err) || (err instanceof ActorDiedError && ++deaths > MAX_DEATH_RETRIES)) throw err;
          this.onRetryable(entry, err);
        } finally {
          this.release(entry);
        }
      }
    } catch (err) {
      error = err;
      throw err;
    } finally {
      this.finish(method, 'unary', opts.requestId, started, error);
    }
  }

  async *stream(method: string, args: unknown[], given: ResolvedCallOptions): AsyncGenerator<unknown> {
    const opts = this.keys.withModelId(method, args, given);
    const started = performance.now();
    let error: unknown;
    this.inFlightCount++;
    try {
      for (let deaths = 0, requeue = false; ; requeue = true) {
        const entry = await this.acquire(
          abortSourceOf(opts),
          requeue,
          this.keys.routingKeyOf(method, args, opts),
          this.routedModelId(given, opts),
        );
        let yielded = false;
        try {
          for await (const item of entry.actor.stream(method, args, opts)) {
            yielded = true;
            yield item;
          }
          return;
        } catch (err) {
          if (yielded || !retriesStream(err, entry) || (err instanceof ActorDiedError && ++deaths > MAX_DEATH_RETRIES))
            throw err;
          this.onRetryable(entry, err);
        } finally {
          this.release(entry);
        }
      }
    } catch (err) {
      error = err;
      throw err;
    } finally {
      this.finish(method, 'stream', opts.requestId, started, error);
    }
  }

  /**
   * The model id to route by: one the caller named always; one the class derived only once a replica
   * has reported a @multiplexed loader in use, so that a class declaring static multiplexedModelId for
   * deployments that only sometimes multiplex (e.g. by constructor options) routes by load otherwise.
   */
  private routedModelId(given: ResolvedCallOptions, opts: ResolvedCallOptions): string | undefined {
    if (given.multiplexedModelId !== undefined) return given.multiplexedModelId;
    if (opts.multiplexedModelId === undefined) return undefined;
    return this.list.some((e) => e.models?.capacity !== undefined) ? opts.multiplexedModelId : undefined;
  }

  /**
   * A request that has to wait in the queue loses its routing key's affinity: whichever replica frees
   * first takes it. A multiplexed model id is kept (a model load costs more than a wait).
   */
  private acquire(source: AbortSource | undefined, requeue: boolean, key?: string, modelId?: string): Promise<Entry> {
    const refused = this.closedWith ?? this.unavailable;
    if (refused) return Promise.reject(refused);
    if (source?.aborted) return Promise.reject(abortReason(source));
    const now = Date.now();
    if (this.waiters.length === 0) {
      const entry = this.pick(now, key, modelId);
      if (entry) return Promise.resolve(entry);
    }
    const max = this.options.maxQueuedRequests;
    if (!requeue && max >= 0 && this.waiters.length >= max) {
      const capacity = [...this.replicas.values()].reduce((n, r) => n + r.maxOngoing, 0);
      const after = retryAfterS(this.waiters.length, capacity);
      return Promise.reject(
        new BackPressureError(
          `${this.options.deployment}: ${this.waiters.length} requests already queued (maxQueuedRequests ${max})`,
          { retryAfterS: after, deployment: this.options.deployment },
        ),
      );
    }
    return new Promise<Entry>((resolve, reject) => {
      const onAborted = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(abortReason(source!));
        this.notifyIdle();
      };
      const waiter: Waiter = {
        modelId,
        resolve: (e) => {
          if (source) offAbort(source, onAborted);
          resolve(e);
        },
        reject: (err) => {
          if (source) offAbort(source, onAborted);
          reject(err);
        },
      };
      if (source) onAbort(source, onAborted);
      this.waiters.push(waiter);
      this.scheduleRetry(now);
    });
  }

  /** `now`: the time the caller also schedules its retry by (see scheduleRetry). */
  private pick(now: number, key?: string, modelId?: string): Entry | undefined {
    const id =
      modelId !== undefined
        ? chooseMultiplexed(this.list, modelId, now, {}, this.options.random)
        : key === undefined
          ? chooseReplica(this.list, now, this.options.random)
          : choosePrefixAware(this.list, key, now, {}, this.options.random);
    const entry = id === null ? undefined : this.replicas.get(id);
    if (!entry) return undefined;
    entry.inFlight++;
    if (modelId !== undefined) (entry.models ??= new ModelView()).routed(modelId, now);
    return entry;
  }

  private release(entry: Entry): void {
    entry.inFlight--;
    this.dispatch();
  }

  private dispatch(): void {
    const now = Date.now();
    while (this.waiters.length > 0) {
      const entry = this.pick(now, undefined, this.waiters[0]!.modelId);
      if (!entry) break;
      this.waiters.shift()!.resolve(entry);
    }
    if (this.waiters.length > 0) this.scheduleRetry(now);
  }

  /**
   * Replicas skipped after a "full" answer become eligible again on a timer, not only on a release.
   * `now` must be the time the failed pick used: read afresh, the clock may have passed a replica's
   * block since, and no timer would be set for the waiter that pick just turned away (a timer may fire
   * a millisecond early by Date.now(); the waiter then stayed queued until its request timed out).
   */
  private scheduleRetry(now: number): void {
    const until = Math.min(...[...this.replicas.values()].map((r) => r.blockedUntilMs ?? 0).filter((t) => t > now));
    if (!Number.isFinite(until) || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.dispatch();
    }, until - now);
  }

  private onRetryable(entry: Entry, err: unknown): void {
    const reason = err instanceof FlotillaError ? err.data?.reason : undefined;
    if (reason === 'full') entry.blockedUntilMs = Date.now() + FULL_BACKOFF_MS;
    else if (this.replicas.delete(entry.id)) this.list = [...this.replicas.values()]; // dead or draining: the controller's next update confirms it
  }

  private finish(method: string, kind: MethodKind, requestId: string, started: number, error: unknown): void {
    this.inFlightCount--;
    this.notifyIdle();
    const { events, app, deployment, caller } = this.options;
    if (!events || events.listenerCount('request') === 0) return;
    const code = error === undefined ? undefined : error instanceof FlotillaError ? error.code : 'INTERNAL';
    events.emit('request', {
      app,
      deployment,
      method,
      kind,
      caller,
      requestId,
      durationMs: performance.now() - started,
      ok: error === undefined,
      errorCode: code,
    });
  }

  private notifyIdle(): void {
    if (this.inFlightCount > 0 || this.waiters.length > 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}

/**
 * A stream that yielded nothing is retried when its replica refused it or died before accepting it (as a
 * call is), and also when the replica died after accepting it: nothing reached the caller, so the caller
 * sees one answer. (An ActorDiedError of a deployment further down, relayed by a live replica, is that
 * replica's answer and is not retried here.)
 */
function retriesStream(err: unknown, entry: Entry): boolean {
  return isRetryable(err) || (err instanceof ActorDiedError && entry.actor.alive === false);
}

export function unavailable(deployment: string, why: string): UnavailableError {
  return new UnavailableError(`deployment ${deployment} is unavailable: ${why}`, { deployment });
}
