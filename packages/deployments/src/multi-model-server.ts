/**
 * MultiModelServer: LLMServer over a catalogue of base models, a few loaded per replica, with core's
 * model multiplexing (docs/multiplexing.md) — vLLM-style options, one engine per loaded model:
 *
 * ```ts
 * @deployment({ numReplicas: 2 })
 * class Fleet extends MultiModelServer {}
 * export const app = Fleet.bind({ models: 'small=/m/small,chat=/m/chat,code=/m/code', maxModelsPerReplica: 2 });
 * ```
 *
 * - A request names its model by OpenAI's `model` (also on /tokenize), the gRPC request's `model`, a graph
 *   request's `model` (LLMFront), or core's serve_multiplexed_model_id header (TGI's bodies name none);
 *   naming none picks the catalogue's first. The same name is the call's multiplexed model id
 *   (`static multiplexedModelId`, read in the callers' routers), so the router prefers a replica that
 *   holds the model and loads it on the emptiest one on a miss.
 * - In the replica, after the key check, a catalogued model that is not loaded is loaded (`servedModel`,
 *   a @multiplexed loader: LLMServer's own loading, server-load.ts, with the server's engine options and
 *   the entry's path, served under the entry's name) and pinned until the request ends. At most
 *   max_models_per_replica stay loaded; the least recently used idle one beyond is disposed (engine,
 *   tokenizer, metrics). A pinned one is never disposed: the replica goes over capacity instead.
 * - Everything else is LLMServer's, over the picked model: routes, keys, limits, rate limits, PII guard,
 *   audit. A name outside the catalogue is 404 model_not_found in the route's shape (gRPC NOT_FOUND);
 *   /v1/models lists the whole catalogue (max_model_len where this replica knows it).
 */
import {
  type DeploymentHandle,
  getMultiplexedModelId,
  type HttpRequestLike,
  multiplexed,
  NotFoundError,
} from '@flotilla/core';
import { LLMApiError, LLMServerConfigError, ModelNotFoundError, ModelUnavailableError } from './errors.js';
import { type CatalogContext, type CatalogEntry, findCatalogRoute } from './front-routes.js';
import type { GraphInfo } from './graph.js';
import type { HttpChunk } from './handler-context.js';
import { type LLMMetrics, mergeFamilies } from './llm-metrics.js';
import { LLMServer } from './llm-server.js';
import type { LLMServerOptions } from './llm-server-options.js';
import { requestModelId } from './lora-multiplex.js';
import { checkModelPaths } from './model-source.js';
import { parseLoraModules } from './openai/lora-routes.js';
import type { RateLimiter } from './rate-limiter.js';
import type { LoadedState } from './server-load.js';

/** One catalogue entry: the model's path and, when it needs one, its tokenizer. */
export interface CatalogueModel {
  model: string;
  tokenizer?: string;
}

export interface MultiModelServerOptions extends LLMServerOptions {
  /**
   * The catalogue: 'name=path,name=path' or { name: path | { model, tokenizer } }. `tokenizer` (the
   * server's option) applies to entries without their own.
   */
  models?: string | Record<string, string | CatalogueModel>;
  /** Models one replica keeps loaded (an engine each); the least recently used idle one beyond is disposed. Default 3. */
  maxModelsPerReplica?: number;
}

/** The model a call names, for the routers and the replica: requestModelId without TGI's adapter_id, plus /tokenize. */
export function catalogueModelId(method: string, args: readonly unknown[]): string | undefined {
  const a = args[0] as { method?: unknown; path?: unknown; body?: unknown } | undefined;
  if (method === 'handleHttp' && typeof a === 'object' && a !== null && typeof a.path === 'string') {
    const path = a.path.replace(/\/+$/, '') || '/';
    if (path === '/tokenize' || path === '/detokenize') return requestModelId(method, [{ ...a, path: '/v1/tokenize' }]);
    if (!path.startsWith('/v1/')) return undefined; // TGI: the header names the model
  }
  return requestModelId(method, args);
}

/** What the multiplexing cache holds per loaded model: disposing it frees the engine. */
interface ResidentModel extends AsyncDisposable {
  name: string;
  state: LoadedState;
  metrics: LLMMetrics;
}

export class MultiModelServer extends LLMServer {
  protected static override loadsModelAtStart = false;

  /** The model a call names, for the callers' routers (core's multiplexing). */
  static multiplexedModelId(method: string, args: readonly unknown[]): string | undefined {
    return catalogueModelId(method, args);
  }

  /** Model name → its path (and tokenizer), in the order given; the first is the default. */
  readonly #catalogue: ReadonlyMap<string, CatalogueModel>;
  /** The most models this replica keeps loaded. */
  readonly modelCapacity: number;
  /** Loaded models (also pinned ones the cache could not evict yet), for metrics and dispose. */
  readonly #live = new Set<ResidentModel>();
  /** Context lengths of models this replica has loaded, for /v1/models. */
  readonly #maxModelLen = new Map<string, number>();
  readonly #createdS = Math.floor(Date.now() / 1000);
  #stopping = false;

  constructor(options: MultiModelServerOptions = {}, rateLimiter?: DeploymentHandle<RateLimiter>) {
    const catalogue = catalogueOf(options);
    super(options, rateLimiter);
    this.#catalogue = catalogue;
    const capacity = options.maxModelsPerReplica ?? 3;
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new LLMServerConfigError(`max_models_per_replica must be an integer >= 1, got ${capacity}`);
    this.modelCapacity = capacity;
  }

  /** The catalogue's names, the default first. */
  catalogue(): string[] {
    return [...this.#catalogue.keys()];
  }

  /** Loads a catalogued model into this replica (on a miss of the replica's cache only). */
  @multiplexed({ maxModelsPerReplica: (self: MultiModelServer) => self.modelCapacity })
  async servedModel(name: string): Promise<ResidentModel> {
    const entry = this.#catalogue.get(name);
    if (!entry) throw new NotFoundError(`no model '${name}' in the catalogue`); // core's 404 (requestState checks first)
    const o = this.options as MultiModelServerOptions;
    const { state, metrics } = await this.loadModel(
      {
        ...o,
        model: entry.model,
        ...(entry.tokenizer !== undefined ? { tokenizer: entry.tokenizer } : {}),
        servedModelName: name,
        strictModelName: true, // a server of several models: another name is not this one
      },
      [],
    );
    let disposed = false;
    const resident: ResidentModel = {
      name,
      state,
      metrics,
      [Symbol.asyncDispose]: async () => {
        if (disposed) return;
        disposed = true;
        this.#live.delete(resident);
        metrics.detach();
        await state.encoder.dispose();
        await state.engine.dispose();
      },
    };
    this.#live.add(resident);
    this.#maxModelLen.set(name, state.engine.maxModelLen);
    if (this.#stopping) {
      await resident[Symbol.asyncDispose]();
      throw new ModelUnavailableError('The server is shutting down; retry against another replica.');
    }
    return resident;
  }

  override async *handleHttp(req: HttpRequestLike): AsyncGenerator<HttpChunk> {
    const listing = findCatalogRoute(req);
    if (!listing) return yield* super.handleHttp(req);
    const admin = this.isAdmin(req);
    yield* this.gated<CatalogContext>(req, listing, async (base) => ({
      ...base,
      catalog: async () => this.#entries(admin),
    }));
  }

  /** GenerationGraph: the catalogue as `models`; max_model_len the option's, else the default model's (loaded for it). */
  override async graphInfo(): Promise<GraphInfo> {
    const [first] = this.#catalogue.keys();
    const maxModelLen =
      this.options.maxModelLen ?? (await this.requestState('graphInfo', undefined)).engine.maxModelLen;
    return {
      name: first!,
      maxModelLen,
      createdS: this.#createdS,
      models: this.catalogue(),
      ...this.graphCapabilities(),
    };
  }

  override async collectMetrics(): Promise<unknown[]> {
    const models = await Promise.all([...this.#live].map((r) => r.metrics.snapshot()));
    return mergeFamilies([...models, (await super.collectMetrics()) as Array<{ name: string; values: unknown[] }>]);
  }

  /** The 'llm' autoscaling policy's inputs over the loaded engines (queues summed, KV use the fullest). */
  override autoscalingMetrics(): Record<string, number> {
    const load = { waitingRequests: 0, runningRequests: 0, kvCacheUsage: 0 };
    for (const r of this.#live) {
      const s = r.state.engine.stats();
      load.waitingRequests += s.waiting;
      load.runningRequests += s.running;
      load.kvCacheUsage = Math.max(load.kvCacheUsage, s.kvUsage);
    }
    return { ...(this.#live.size > 0 ? load : {}), ...super.autoscalingMetrics() };
  }

  /** Frees every loaded model (requests still running end as their engine goes), then the server. */
  override async dispose(): Promise<void> {
    this.#stopping = true;
    await Promise.all([...this.#live].map((r) => r[Symbol.asyncDispose]()));
    return super.dispose();
  }

  /** The model the request names (the default when none), loaded here and pinned until the request ends. */
  protected override async requestState(method: string, request: unknown): Promise<LoadedState> {
    if (this.#stopping) throw new ModelUnavailableError('The server is shutting down; retry against another replica.');
    const [first] = this.#catalogue.keys();
    const name = catalogueModelId(method, [request]) ?? getMultiplexedModelId() ?? first!;
    if (!this.#catalogue.has(name))
      throw new ModelNotFoundError(
        `The model '${name}' does not exist; this server serves '${this.catalogue().join("', '")}'.`,
        'model',
      );
    try {
      return (await this.servedModel(name)).state;
    } catch (err) {
      if (err instanceof LLMApiError) throw err; // e.g. shutting down
      throw new ModelUnavailableError(`The model '${name}' failed to load: ${(err as Error).message}`);
    }
  }

  #entries(admin: boolean): CatalogEntry[] {
    return [...this.#catalogue].map(([name, entry]) => ({
      model: { name, path: admin ? entry.model : name, randomWeights: false, createdS: this.#createdS },
      maxModelLen: this.#maxModelLen.get(name) ?? this.options.maxModelLen ?? null,
    }));
  }
}

/** The `models` option as a map (checked: at least one entry, paths exist, no LoRA catalogue beside it). */
function catalogueOf(options: MultiModelServerOptions): Map<string, CatalogueModel> {
  if (typeof options !== 'object' || options === null)
    throw new LLMServerConfigError('MultiModelServer options must be an object');
  if (options.model !== undefined)
    throw new LLMServerConfigError(
      'MultiModelServer serves its `models` catalogue: give models=name=path,..., not model',
    );
  if (options.loraModules !== undefined)
    throw new LLMServerConfigError('MultiModelServer does not take lora_modules; MultiLoraServer multiplexes adapters');
  const v = options.models;
  const entries: Array<[string, CatalogueModel]> =
    typeof v === 'object' && v !== null
      ? Object.entries(v).map(([name, e]) => [name, typeof e === 'string' ? { model: e } : e])
      : parseLoraModules(v, 'models').map((m) => [m.name, { model: m.path }]);
  if (entries.length === 0)
    throw new LLMServerConfigError('MultiModelServer needs models (name=path,...): the models it multiplexes');
  for (const [name, e] of entries) {
    if (typeof e?.model !== 'string' || e.model === '')
      throw new LLMServerConfigError(`models: '${name}' needs a model path`);
    checkModelPaths(e.model, e.tokenizer);
  }
  return new Map(entries);
}
