/**
 * MultiLoraServer: LLMServer whose LoRA catalogue (`lora_modules`, name=path) is spread over its
 * replicas with core's model multiplexing (docs/multiplexing.md) instead of being loaded into every one:
 *
 * ```ts
 * @deployment({ numReplicas: 3 })
 * class Tuned extends MultiLoraServer {}
 * export const app = Tuned.bind({ model: 'models/base', loraModules: 'a=/ad/a,b=/ad/b,...', maxLoras: 4 });
 * ```
 *
 * - A request names its adapter as on LLMServer: OpenAI's `model`, TGI's `parameters.adapter_id`, the
 *   gRPC request's `model` (multiplexedModelId below, read in the callers' routers), so the router sends
 *   it to a replica that already holds that adapter, or loads it on the least loaded one.
 * - In the replica, a request naming a catalogued adapter that is not loaded loads it into the engine
 *   (`adapter`, a @multiplexed loader) after its key is checked and before it runs; the adapter stays
 *   pinned until the request ends. The replica keeps at most the engine's LoRA slots (max_loras) of them;
 *   the least recently used idle one beyond is unloaded from the engine (engine.unloadAdapter), so a
 *   replica holds only the adapters it is routed. A name outside the catalogue is LLMServer's answer
 *   (the base model, or 404 model_not_found).
 * - The routers learn that a replica holds adapters from its first load on (core's rule for derived
 *   ids); until then requests are routed by load, as LLMServer's.
 */
import type { DeploymentHandle } from '@flotilla/core';
import { multiplexed } from '@flotilla/core';
import { LLMServerConfigError, ModelNotFoundError } from './errors.js';
import { GRAPH_INTERNAL_METHODS, type GraphInfo } from './graph.js';
import { LLMServer } from './llm-server.js';
import type { LLMServerOptions } from './llm-server-options.js';
import { loraEngineOptions, parseLoraModules, type LoraModule } from './openai/lora-routes.js';
import type { RateLimiter } from './rate-limiter.js';

type Rec = Record<string, unknown>;
/** Calls whose first argument carries the model as `model`: llm.proto's and GenerationGraph's. */
const GRAPH_AND_GRPC_CALLS = new Set(['grpcGenerate', 'grpcGenerateStream', 'grpcEmbed', ...GRAPH_INTERNAL_METHODS]);
const isRecord = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);
const nonEmpty = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * The model a call of LLMServer's `method` names, read as the routes read it (llm-routing-key.ts reads
 * the same calls): any OpenAI POST body's `model`; TGI's `parameters.adapter_id` on /generate,
 * /generate_stream and /; a gRPC request's `model`; a graph request's `model` (LLMFront's tokenizePrompt
 * and generateStream calls, graph.ts). Undefined for none; never throws.
 */
export function requestModelId(method: string, args: readonly unknown[]): string | undefined {
  const a = args[0];
  if (!isRecord(a)) return undefined;
  if (GRAPH_AND_GRPC_CALLS.has(method)) return nonEmpty(a.model);
  if (method !== 'handleHttp' || a.method !== 'POST' || typeof a.path !== 'string' || !isRecord(a.body))
    return undefined;
  const path = a.path.replace(/\/+$/, '') || '/';
  if (path.startsWith('/v1/')) return nonEmpty(a.body.model);
  if (path === '/generate' || path === '/generate_stream' || path === '/')
    return isRecord(a.body.parameters) ? nonEmpty(a.body.parameters.adapter_id) : undefined;
  return undefined;
}

/** What the multiplexing cache holds per adapter: disposing it unloads the adapter from the engine. */
interface ResidentAdapter {
  name: string;
  [Symbol.asyncDispose](): Promise<void>;
}

export class MultiLoraServer extends LLMServer {
  /** The adapter (or model) a call names, for the callers' routers (core's multiplexing). */
  static multiplexedModelId(method: string, args: readonly unknown[]): string | undefined {
    return requestModelId(method, args);
  }

  /** Adapter name → its PEFT directory (lora_modules). */
  readonly #catalogue: ReadonlyMap<string, string>;
  /** The engine's LoRA slots (max_loras): the most adapters this replica keeps loaded. */
  readonly adapterCapacity: number;
  #stopping = false;

  constructor(options: LLMServerOptions = {}, rateLimiter?: DeploymentHandle<RateLimiter>) {
    const modules = catalogueOf(options);
    super(options, rateLimiter);
    this.#catalogue = new Map(modules.map((m) => [m.name, m.path]));
    this.adapterCapacity = loraEngineOptions(options).maxLoras ?? 0;
  }

  /** Loads a catalogued adapter into this replica's engine (on a miss of the replica's cache only). */
  @multiplexed({ maxModelsPerReplica: (self: MultiLoraServer) => self.adapterCapacity })
  async adapter(name: string): Promise<ResidentAdapter> {
    const path = this.#catalogue.get(name);
    if (path === undefined) throw new ModelNotFoundError(`The model '${name}' does not exist.`, 'model');
    const engine = await this.loadedEngine();
    await engine.loadAdapter(name, path);
    return {
      name,
      [Symbol.asyncDispose]: async () => {
        // Requests still running on it finish with it (the engine frees its slot after them).
        if (!this.#stopping && engine.adapters?.has(name)) await engine.unloadAdapter(name);
      },
    };
  }

  /** GenerationGraph: the base model's info with the catalogue's adapters as `models` (LLMFront routes them here). */
  override async graphInfo(): Promise<GraphInfo> {
    return { ...(await super.graphInfo()), models: this.catalogue() };
  }

  /** The catalogue's names, for /v1/models-like listings (the loaded ones are in /-/status `models`). */
  catalogue(): string[] {
    return [...this.#catalogue.keys()];
  }

  override dispose(): Promise<void> {
    this.#stopping = true; // the engine goes with the server: no unloads into a freed engine
    return super.dispose();
  }

  /** Nothing at start-up: adapters load where requests are routed. */
  protected override startupAdapters(): LoraModule[] {
    return [];
  }

  /** Loads (and pins until the request ends) the catalogued adapter the request names. */
  protected override async beforeRequest(method: string, request: unknown): Promise<void> {
    const id = requestModelId(method, [request]);
    if (id !== undefined && this.#catalogue.has(id)) await this.adapter(id);
  }
}

/** lora_modules, which a MultiLoraServer must have (it is what it multiplexes). */
function catalogueOf(options: LLMServerOptions): LoraModule[] {
  const modules = parseLoraModules(options?.loraModules);
  if (modules.length === 0)
    throw new LLMServerConfigError('MultiLoraServer needs lora_modules (name=path,...): the adapters it multiplexes');
  return modules;
}
