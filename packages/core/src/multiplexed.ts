/**
 * `@multiplexed({ maxModelsPerReplica })`: many models behind one deployment, a few loaded per replica,
 * like Ray Serve's @serve.multiplexed. Decorate an async loader `(modelId) => model`; call it from a
 * request with the request's id:
 *
 * ```ts
 * @deployment({ numReplicas: 3 })
 * class Models {
 *   @multiplexed({ maxModelsPerReplica: 4 })
 *   async model(id: string): Promise<Model> { return Model.load(id); }
 *
 *   async predict(input: string) {
 *     const m = await this.model(getMultiplexedModelId()!); // or await this.model() for the same
 *     return m.run(input);
 *   }
 * }
 * // callers: handle.options({ multiplexedModelId: 'a' }).predict(x), or the HTTP header serve_multiplexed_model_id: a
 * ```
 *
 * Per replica, the loader's results are cached (replica/model-cache.ts): a miss calls the loader (one
 * load per id however many requests wait for it), and once it has loaded the least recently used model
 * beyond the capacity is evicted (a failed load evicts nothing), its `[Symbol.asyncDispose]()` or `dispose()` called if it has one, and never while a running
 * request uses it (a model is pinned from the loader's return until the request ends). The replica
 * reports its loaded ids with its stats; callers' routers prefer replicas that hold a call's model
 * (router/multiplex-router.ts); `/-/status`, `serve status` and `/metrics` show them.
 *
 * A loader that throws fails that request with ModelLoadError (HTTP 500, code MODEL_LOAD_FAILED) unless it
 * threw one of core's typed errors itself (e.g. NotFoundError for an unknown id: 404), which passes as
 * is; the replica stays healthy and nothing is cached. The loader is not callable through handles.
 * One @multiplexed loader per class (with several, the replica reports their ids together). Not for
 * pool deployments (`pool: {...}`): their calls run on other threads, which neither pin nor report.
 */
import { BadRequestError, FlotillaError, ModelLoadError } from './errors.js';
import { getMultiplexedModelId, onRequestEnd } from './request-context.js';
import { ModelCache } from './replica/model-cache.js';
import type { MultiplexedModelsInfo } from './contract/status.js';

export interface MultiplexedOptions {
  /**
   * Models one replica keeps loaded; the least recently used beyond it is evicted. Default: 3 (Ray's).
   * A function of the instance when it depends on constructor options (e.g. an engine's LoRA slots):
   * read at the loader's first call.
   */
  maxModelsPerReplica?: number | ((instance: any) => number);
}

/** What a replica reports of its multiplexed models with its stats (ReplicaStats.models). */
export type MultiplexedReport = MultiplexedModelsInfo;

/** Marks the decorated loader, which replica/user-callable.ts keeps out of the methods handles can call. */
export const MULTIPLEXED_LOADER = Symbol.for('flotilla.multiplexedLoader');

/** The caches of this thread's instances (one replica per thread or process). */
const caches = new Set<ModelCache<unknown>>();

export function multiplexed(options: MultiplexedOptions = {}) {
  const declared = options.maxModelsPerReplica ?? 3;
  const checked = (capacity: number): number => {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new BadRequestError(`@multiplexed: maxModelsPerReplica must be an integer >= 1, got ${capacity}`);
    return capacity;
  };
  if (typeof declared !== 'function') checked(declared);
  return function decorate<M extends (this: any, modelId: string) => Promise<unknown>>(
    method: M,
    context: ClassMethodDecoratorContext,
  ): M {
    const name = String(context.name);
    const perInstance = new WeakMap<object, ModelCache<unknown>>();
    const loader = async function (this: object, modelId?: string): Promise<unknown> {
      const id = modelId ?? getMultiplexedModelId();
      if (typeof id !== 'string' || id === '') {
        throw new BadRequestError(
          `${name}: no multiplexed model id (pass CallOptions.multiplexedModelId, the serve_multiplexed_model_id ` +
            'header, or an id argument)',
          { method: name },
        );
      }
      let cache = perInstance.get(this);
      if (!cache) {
        cache = new ModelCache<unknown>({
          capacity: checked(typeof declared === 'function' ? declared(this) : declared),
          load: (mid) => loadWith(method, this, name, mid),
          dispose: disposeModel,
          onDisposeError: (err, mid) =>
            process.stderr.write(`[flotilla] ${name}: disposing model '${mid}' threw: ${describe(err)}\n`),
        });
        perInstance.set(this, cache);
        caches.add(cache);
      }
      const lease = await cache.acquire(id);
      if (!onRequestEnd(lease.release)) lease.release(); // outside a request (e.g. warm-up): nothing to pin for
      return lease.model;
    };
    Object.defineProperty(loader, MULTIPLEXED_LOADER, { value: true });
    return loader as unknown as M;
  };
}

/** Whether a class (or a parent class) declares a @multiplexed loader. */
export function hasMultiplexedLoader(cls: unknown): boolean {
  if (typeof cls !== 'function') return false;
  for (let proto = cls.prototype; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const value = Object.getOwnPropertyDescriptor(proto, name)?.value;
      if (typeof value === 'function' && MULTIPLEXED_LOADER in value) return true;
    }
  }
  return false;
}

/** This replica's multiplexed models for its stats report; undefined when its class has no @multiplexed loader in use. */
export function multiplexedReport(): MultiplexedReport | undefined {
  if (caches.size === 0) return undefined;
  const report: MultiplexedReport = { ids: [], capacity: 0, loads: 0, hits: 0, loadFailures: 0, evictions: 0 };
  for (const c of caches) {
    report.ids.push(...c.ids());
    report.capacity += c.capacity;
    report.loads += c.counters.loads;
    report.hits += c.counters.hits;
    report.loadFailures += c.counters.loadFailures;
    report.evictions += c.counters.evictions;
  }
  return report;
}

/** Disposes the unpinned models of this thread (the replica is stopping). */
export async function clearMultiplexedModels(): Promise<void> {
  await Promise.all([...caches].map((c) => c.clear()));
}

async function loadWith(
  method: (this: object, id: string) => Promise<unknown>,
  self: object,
  name: string,
  id: string,
) {
  try {
    return await method.call(self, id);
  } catch (err) {
    if (err instanceof FlotillaError) throw err;
    throw new ModelLoadError(`${name}: loading model '${id}' failed: ${describe(err)}`, {
      modelId: id,
      cause: describe(err),
    });
  }
}

async function disposeModel(model: unknown): Promise<void> {
  if (typeof model !== 'object' || model === null) return;
  const m = model as { [Symbol.asyncDispose]?: () => unknown; dispose?: () => unknown };
  const fn = typeof m[Symbol.asyncDispose] === 'function' ? m[Symbol.asyncDispose] : m.dispose;
  if (typeof fn === 'function') await fn.call(model);
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
