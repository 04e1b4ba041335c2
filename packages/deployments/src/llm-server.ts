/**
 * LLMServer: the deployment that serves one model through LLMEngine, speaking the OpenAI and TGI HTTP
 * APIs (handleHttp: the proxy hands it every request under its route prefix) and gRPC (protos/llm.proto,
 * declared in `grpcServices` and bound by `serve run`). Subclass and decorate it:
 *
 * ```ts
 * @deployment({ maxOngoingRequests: 256 })
 * class Stories extends LLMServer {}
 * export const app = Stories.bind({ model: 'models/stories260K.bin' });
 * ```
 *
 * The constructor returns at once and the model loads in the background: /health answers 503 until it
 * is ready, and generation requests wait for it. Every request passes the Guard (API key, rate limits,
 * body size) before it can reach the engine, and leaves one audit line (request-gate.ts, shared with
 * LLMFront). It is also a GenerationGraph (graph.ts), so LLMFront can serve it among other graphs. The
 * replica calls dispose() once when it stops, which frees the engine's native memory.
 */
import type { DeploymentHandle, GrpcCallInfo, HttpRequestLike, IngressKeys } from '@flotilla/core';
import { getRequestContext, readKeyFile } from '@flotilla/core';
import type { EngineSpeculativeOptions, EngineStats, LLMEngine } from '@flotilla/engine';
import { type ContextBase, RequestGate } from './request-gate.js';
import { engineBackend } from './engine-backend.js';
import { startGeneration } from './generation.js';
import type {
  GenerationGraph,
  GraphDelta,
  GraphDetokenizeRequest,
  GraphEmbedRequest,
  GraphEmbedTokensRequest,
  GraphInfo,
  GraphPrepared,
  GraphRequest,
  GraphTokenizeRequest,
} from './graph.js';
import { GRAPH_INTERNAL_METHODS } from './graph.js';
import { engineDeltas, graphPrepared, graphSpec } from './graph-deltas.js';
import { preparePrompt } from './prepare-prompt.js';
import { engineSpeculation } from './engine-speculation.js';
import { LLMServerConfigError, ModelUnavailableError, UnsupportedTaskError } from './errors.js';
import type { HandlerContext, HttpChunk, ModelInfo, RouteContext } from './handler-context.js';
import { findRoute, type Route } from './http-routes.js';
import type { Guard } from './guard.js';
import { LLM_GRPC_SERVICE, grpcGenerate, grpcGenerateStream, type GrpcGenerateRequest } from './grpc/llm-grpc.js';
import { grpcEmbed, type GrpcEmbedRequest } from './grpc/embed.js';
import type { LLMMetrics } from './llm-metrics.js';
import { llmRoutingKey, ROUTING_KEY_CHARS } from './llm-routing-key.js';
import type { LLMServerOptions } from './llm-server-options.js';
import { checkModelPaths } from './model-source.js';
import type { OffLoopTokenizer } from './off-loop-tokenizer.js';
import { engineEmbedder } from './openai/embeddings.js';
import { parseLoraModules, type LoraModule } from './openai/lora-routes.js';
import { engineTokenizer } from './openai/tokenize.js';
import type { RateLimiter } from './rate-limiter.js';
import { type LoadedState, loadServedModel } from './server-load.js';

export type { LoadedState } from './server-load.js';

export class LLMServer implements GenerationGraph {
  /** The graph methods the front calls (graph.ts): through handles only, never from a proxy's client. */
  static internalMethods: readonly string[] = GRAPH_INTERNAL_METHODS;
  /** Picked up by `serve run` (grpcServicesOf): the Llm service of protos/llm.proto, served by this deployment. */
  static grpcServices = [LLM_GRPC_SERVICE];
  /** The proxy hands over a JSON body that does not parse, so that it is answered in OpenAI's or TGI's error shape. */
  static handlesMalformedJson = true;
  /** Leading prompt characters that make up the routing key; a subclass may set its own. Default: 256. */
  static routingKeyChars = ROUTING_KEY_CHARS;
  /**
   * Whether the constructor loads `options.model` (the one model every request runs on). False in a
   * subclass that picks a model per request (MultiModelServer overrides requestState): nothing loads at
   * start, /health is 200 at once.
   */
  protected static loadsModelAtStart = true;

  /**
   * The routing key for `routing: 'prefix-aware'`: the first routingKeyChars characters of the prompt of
   * an OpenAI, TGI or gRPC generation request (llm-routing-key.ts), so that requests sharing a prompt
   * prefix reach the replica whose prefix cache holds it. Called by the callers' routers, not by replicas.
   */
  static routingKey(method: string, args: readonly unknown[]): string | undefined {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the deployed subclass, whose routingKeyChars applies
    return llmRoutingKey(method, args, this.routingKeyChars);
  }

  protected readonly options: LLMServerOptions;
  /** Keys, limits, PII guard, audit and usage: shared with LLMFront (request-gate.ts). */
  readonly #gate: RequestGate;
  #state: LoadedState | undefined;
  #loadError: Error | undefined;
  /** The start-up load; undefined when the class loads models per request (loadsModelAtStart false). */
  readonly #loading: Promise<LoadedState> | undefined;
  #metrics: LLMMetrics | undefined;
  /** The engine's speculative-decoding option, from options (engine-speculation.ts); undefined: off. */
  readonly #speculative: EngineSpeculativeOptions | undefined;
  #disposing: Promise<void> | undefined;

  /**
   * `rateLimiter`: a RateLimiter deployment (`LLM.bind(options, Limits.bind({ requests, tokens }))`) holding
   * the per-key buckets for every replica, so that a key's limit holds however many replicas serve it (one
   * handle call per request); not together with `options.rateLimits`. Default: none.
   */
  constructor(options: LLMServerOptions = {}, rateLimiter?: DeploymentHandle<RateLimiter>) {
    if (typeof options !== 'object' || options === null)
      throw new LLMServerConfigError('LLMServer options must be an object');
    if (options.quantization !== undefined && options.quantization !== 'gptq' && options.quantization !== 'awq') {
      throw new LLMServerConfigError(
        `quantization must be 'gptq' or 'awq' (pre-quantized checkpoints), got ${JSON.stringify(options.quantization)}`,
      );
    }
    if (options.quantize !== undefined && options.quantize !== 'int8' && options.quantize !== 'int4') {
      throw new LLMServerConfigError(`quantize must be 'int8' or 'int4', got ${JSON.stringify(options.quantize)}`);
    }
    if (options.activations !== undefined && options.activations !== 'int8' && options.activations !== 'f32')
      throw new LLMServerConfigError(`activations must be 'int8' or 'f32', got ${JSON.stringify(options.activations)}`);
    if (options.task !== undefined && !['auto', 'generate', 'embed'].includes(options.task))
      throw new LLMServerConfigError(`task must be 'auto', 'generate' or 'embed', got ${JSON.stringify(options.task)}`);
    if (options.pooling !== undefined && options.pooling !== 'mean' && options.pooling !== 'last')
      throw new LLMServerConfigError(`pooling must be 'mean' or 'last', got ${JSON.stringify(options.pooling)}`);
    checkModelPaths(options.model, options.tokenizer);
    this.#speculative = engineSpeculation(options);
    this.options = options;
    this.#gate = new RequestGate(options, rateLimiter);
    if (!(new.target as typeof LLMServer).loadsModelAtStart) return;
    this.#loading = this.#load();
    this.#loading.catch((err: Error) => {
      this.#loadError = err;
      process.stderr.write(`[flotilla] LLMServer: the model failed to load: ${err.message}\n`);
    });
  }

  /**
   * The keys `serve run` gives the proxies in front of this deployment (core's declaredKeysOf), so that its
   * api_keys / admin_keys / metrics_keys guard the proxies' own routes (/metrics, /-/status, ...) as well.
   */
  static ingressKeys(options: LLMServerOptions = {}): IngressKeys {
    return {
      apiKeys: [...(options.apiKeys ?? []), ...(options.apiKeyFile ? readKeyFile(options.apiKeyFile) : [])],
      adminKeys: options.adminKeys ?? [],
      metricsKeys: options.metricsKeys ?? [],
    };
  }

  /** Every HTTP request under the route prefix (OpenAI and TGI routes, /health). */
  async *handleHttp(req: HttpRequestLike): AsyncGenerator<HttpChunk> {
    if (req.method === 'GET' && (req.path === '/health' || req.path === '/health/')) {
      yield this.#health();
      return;
    }
    const route = findRoute(req);
    yield* this.#gate.http(req, route, async (base) => {
      this.checkTask(route.generates, route.embeds === true, route.name);
      const state = await this.requestState('handleHttp', req);
      const admin = this.#gate.isAdmin(req);
      return this.#context(base, state, admin ? state.model : withoutPath(state.model), admin);
    });
  }

  /**
   * gRPC Generate (protos/llm.proto); also callable through a handle. The API key comes from the call's
   * `authorization: Bearer KEY` metadata (callInfo, passed by the gRPC proxy) or else the request's api_key.
   */
  grpcGenerate(request: GrpcGenerateRequest, callInfo?: GrpcCallInfo): Promise<unknown> {
    const context = this.#grpcContext('grpc Generate', 'grpcGenerate', request);
    return this.#gate.grpcUnary(request, callInfo, 'grpc Generate', context, grpcGenerate);
  }

  /** gRPC GenerateStream; also callable through a handle (`handle.stream.grpcGenerateStream(req)`). */
  async *grpcGenerateStream(request: GrpcGenerateRequest, callInfo?: GrpcCallInfo): AsyncGenerator<unknown> {
    const context = this.#grpcContext('grpc GenerateStream', 'grpcGenerateStream', request);
    yield* this.#gate.grpcStream(request, callInfo, 'grpc GenerateStream', context, grpcGenerateStream);
  }

  /** gRPC Embed (embeddings, as /v1/embeddings); also callable through a handle. */
  grpcEmbed(request: GrpcEmbedRequest, callInfo?: GrpcCallInfo): Promise<unknown> {
    const context = this.#grpcContext('grpc Embed', 'grpcEmbed', request);
    return this.#gate.grpcPlain(request, callInfo, 'grpc Embed', context, (r, ctx) =>
      grpcEmbed(r as GrpcEmbedRequest, ctx, engineEmbedder(ctx)),
    );
  }

  /** GenerationGraph (graph.ts): this server's model, for LLMFront's /v1/models and /info; waits for the load. */
  async graphInfo(): Promise<GraphInfo> {
    const { engine, model } = await this.#ready();
    return {
      name: model.name,
      maxModelLen: engine.maxModelLen,
      createdS: model.createdS,
      randomWeights: model.randomWeights,
      maxConcurrentRequests: engine.scheduler.maxNumSeqs,
      ...this.graphCapabilities(),
    };
  }

  /** What GraphInfo says this server serves beyond generation: embeddings unless task 'generate'; tokenize. */
  protected graphCapabilities(): Pick<GraphInfo, 'embeddings' | 'tokenizer'> {
    return { embeddings: (this.options.task ?? 'auto') !== 'generate', tokenizer: true };
  }

  /** GenerationGraph (optional): the embedding inputs' token ids, checked against the model and `dimensions`. */
  async tokenizeEmbeddingInputs(req: GraphEmbedRequest): Promise<number[][]> {
    this.checkTask(false, true, 'embeddings');
    const state = await this.requestState('tokenizeEmbeddingInputs', req);
    return engineEmbedder(graphTarget(state)).prepare(req.inputs, req.dimensions);
  }

  /** GenerationGraph (optional): the vectors of tokenizeEmbeddingInputs' ids (the front admitted them). */
  async embedTokens(req: GraphEmbedTokensRequest): Promise<Float32Array[]> {
    this.checkTask(false, true, 'embeddings');
    const state = await this.requestState('embedTokens', req);
    return engineEmbedder(graphTarget(state)).embed(req.tokenIds);
  }

  /** GenerationGraph (optional): vLLM's /tokenize on this server's model (the front checked sizes and admitted). */
  async tokenizeText(req: GraphTokenizeRequest): Promise<{ tokens: number[]; maxModelLen: number }> {
    const state = await this.requestState('tokenizeText', req);
    return engineTokenizer(state).tokenize(req.request);
  }

  /** GenerationGraph (optional): vLLM's /detokenize on this server's model. */
  async detokenizeTokens(req: GraphDetokenizeRequest): Promise<string> {
    const state = await this.requestState('detokenizeTokens', req);
    return engineTokenizer(state).detokenize(req.tokens);
  }

  /** GenerationGraph: tokenizes and checks a request against the model and this server's limits; generates nothing. */
  async tokenizePrompt(req: GraphRequest): Promise<GraphPrepared> {
    this.checkTask(true, false, 'generation');
    const state = await this.requestState('tokenizePrompt', req);
    return graphPrepared(await preparePrompt(state, graphSpecOn(state, req)));
  }

  /** GenerationGraph: the request's outputs as deltas (the caller, LLMFront, did keys, limits and audit). */
  async *generateStream(req: GraphRequest): AsyncGenerator<GraphDelta> {
    this.checkTask(true, false, 'generation');
    const state = await this.requestState('generateStream', req);
    const prepared = await preparePrompt(state, graphSpecOn(state, req));
    const stream = startGeneration(state.engine, prepared, req.names, {
      requestId: req.requestId,
      ...(getRequestContext()?.signal ? { signal: getRequestContext()!.signal } : {}),
    });
    yield* engineDeltas(stream, req.tokenInfo ? state.engine.tokenizer : null, prepared.tokenIds);
  }

  /** The engine's counters (for tests, dashboards and autoscaling signals); null while loading. */
  engineStats(): (EngineStats & { debug: ReturnType<LLMEngine['debugCounts']> }) | null {
    const engine = this.#state?.engine;
    return engine ? { ...engine.stats(), debug: engine.debugCounts() } : null;
  }

  /**
   * Runs for each HTTP and gRPC request once the model is ready and the key checked, before the route:
   * `method` and `request` as the call's (e.g. 'handleHttp' and the HTTP request). A throw is answered
   * in the route's error shape. MultiLoraServer loads the adapter a request names here.
   */
  protected async beforeRequest(_method: string, _request: unknown): Promise<void> {}

  /**
   * The loaded model a request runs on, once its key is checked (HTTP and gRPC) or as a graph call
   * (tokenizePrompt, generateStream): `method` and `request` as the call's. Here the server's one model
   * (waited for) after beforeRequest; MultiModelServer picks (and loads) the model the request names. A
   * throw is answered in the route's error shape.
   */
  protected async requestState(method: string, request: unknown): Promise<LoadedState> {
    const state = await this.#ready();
    await this.beforeRequest(method, request);
    return state;
  }

  /**
   * An HTTP request through this server's gate (keys, body limits, rate limits, audit line, errors in
   * the route's shape) on a route of a subclass's own, whose context `context` builds.
   */
  protected gated<C extends RouteContext>(
    req: HttpRequestLike,
    route: Route<C>,
    context: (base: ContextBase) => Promise<C>,
  ): AsyncGenerator<HttpChunk> {
    return this.#gate.http(req, route, context);
  }

  /** The adapters loaded with the model: lora_modules; MultiLoraServer (lora-multiplex.ts) loads them on demand instead. */
  protected startupAdapters(): LoraModule[] {
    return parseLoraModules(this.options.loraModules);
  }

  /** Whether an HTTP request may see model paths (an admin key, or a server without keys); see RequestGate.isAdmin. */
  protected isAdmin(req: HttpRequestLike): boolean {
    return this.#gate.isAdmin(req);
  }

  /** The engine, for subclasses (e.g. to observe its events); undefined while loading. */
  protected get engine(): LLMEngine | undefined {
    return this.#state?.engine;
  }

  /** The engine once loaded, for subclasses' own methods (ModelUnavailableError when it failed or the server stops). */
  protected async loadedEngine(): Promise<LLMEngine> {
    return (await this.#ready()).engine;
  }

  /** The tokenizer the routes use (long prompts off the event loop), for subclasses; undefined while loading. */
  protected get promptEncoder(): OffLoopTokenizer | undefined {
    return this.#state?.encoder;
  }

  /**
   * What /v1/models and /info describe, without the model's file path (`path` is the served name): callers
   * of this method are not known to be admins. The path is shown to admin keys only, on /v1/models
   * (`root`) and /info (`model_path`). Null while loading.
   */
  modelInfo(): ModelInfo | null {
    const model = this.#state?.model;
    return model ? withoutPath(model) : null;
  }

  /** The API keys and rate limits this server checks. */
  get guard(): Guard {
    return this.#gate.guard;
  }

  /** Replica metrics for the proxy's /metrics (prom-client JSON); see packages/core's collectMetrics. */
  async collectMetrics(): Promise<unknown[]> {
    const own = this.#metrics ? await this.#metrics.snapshot() : [];
    return [...own, ...(await this.#gate.piiMetrics())];
  }

  /**
   * The engine's load for the autoscaler ('llm' policy): waiting queue and KV-cache use (0..1); and the
   * tokens served so far (promptTokensTotal, completionTokensTotal), which core's cost ledger prices.
   */
  autoscalingMetrics(): Record<string, number> {
    const s = this.#state?.engine.stats();
    const load: Record<string, number> = s
      ? { waitingRequests: s.waiting, runningRequests: s.running, kvCacheUsage: s.kvUsage }
      : {};
    return { ...load, ...this.#gate.usageCounters.report() };
  }

  /** Fails while the model failed to load, so the controller reports (and replaces) the replica. */
  async checkHealth(): Promise<void> {
    if (this.#loadError) throw this.#loadError;
  }

  /**
   * Called once by the replica as it stops (scale-down, replacement, serve shutdown), after draining:
   * ends the requests still running (they fail as the engine goes), stops observing the engine and
   * frees its native memory (weights, KV cache). A model still loading is freed once loaded. Requests
   * after it get 503.
   */
  dispose(): Promise<void> {
    this.#disposing ??= (async () => {
      const state = this.#state ?? (await this.#loading?.catch(() => undefined));
      this.#metrics?.detach();
      await state?.encoder.dispose();
      await state?.engine.dispose();
    })();
    return this.#disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  async #load(): Promise<LoadedState> {
    const { state, metrics } = await this.loadModel(this.options, this.startupAdapters());
    this.#metrics = metrics;
    this.#state = state;
    return state;
  }

  /** Loads a model with this server's engine options (server-load.ts); MultiModelServer loads its catalogue's. */
  protected loadModel(options: LLMServerOptions, adapters: LoraModule[]): ReturnType<typeof loadServedModel> {
    return loadServedModel(options, adapters, this.#speculative);
  }

  /** Refuses a route the server's task does not serve (options.task), as UnsupportedTaskError (400). */
  protected checkTask(generates: boolean, embeds: boolean, what: string): void {
    const task = this.options.task ?? 'auto';
    if (task === 'embed' && generates)
      throw new UnsupportedTaskError(
        `${what} is not served: this server runs its model for embeddings only (task 'embed')`,
      );
    if (task === 'generate' && embeds)
      throw new UnsupportedTaskError(
        `${what} is not served: this server runs its model for generation only (task 'generate')`,
      );
  }

  async #ready(): Promise<LoadedState> {
    if (this.#disposing) throw new ModelUnavailableError('The server is shutting down; retry against another replica.');
    if (this.#state) return this.#state;
    if (this.#loadError) throw new ModelUnavailableError(`The model failed to load: ${this.#loadError.message}`);
    if (!this.#loading) throw new ModelUnavailableError('This server loads the model each request names.');
    try {
      return await this.#loading;
    } catch (err) {
      throw new ModelUnavailableError(`The model failed to load: ${(err as Error).message}`);
    }
  }

  /** Refuses a route the task does not serve, waits for the model, builds the context. */
  #grpcContext(route: string, method: string, request: unknown): (base: ContextBase) => Promise<HandlerContext> {
    return async (base) => {
      this.checkTask(route !== 'grpc Embed', route === 'grpc Embed', route);
      const state = await this.requestState(method, request);
      return this.#context(base, state, state.model);
    };
  }

  /** A route handler's context over this server's engine. */
  #context(base: ContextBase, state: LoadedState, model: ModelInfo, admin = false): HandlerContext {
    return {
      ...base,
      admin,
      engine: state.engine,
      encoder: state.encoder,
      limits: state.limits,
      model,
      backend: engineBackend(state.engine, state.encoder, state.limits, base),
    };
  }

  #health(): HttpChunk {
    if (this.#disposing)
      return { status: 503, body: { error: 'the server is shutting down', error_type: 'unhealthy' } };
    if (this.#state || !this.#loading) return { status: 200, body: {} };
    if (this.#loadError)
      return {
        status: 503,
        body: { error: `model failed to load: ${this.#loadError.message}`, error_type: 'unhealthy' },
      };
    return { status: 503, body: { error: 'model is loading', error_type: 'loading' } };
  }
}

/** The model as non-admins see it: the served name where the file path was. */
function withoutPath(model: ModelInfo): ModelInfo {
  return { ...model, path: model.name };
}

/** A graph request's spec on `state`'s engine: `req.model` naming one of its LoRA adapters runs on it. */
function graphSpecOn(state: LoadedState, req: GraphRequest) {
  const spec = graphSpec(req);
  return req.model !== undefined && state.engine.adapters?.has(req.model) ? { ...spec, adapter: req.model } : spec;
}

/** A loaded model as a graph call's Embedder sees it: the call's abort signal (the caller went away). */
function graphTarget(state: LoadedState) {
  const signal = getRequestContext()?.signal;
  return { engine: state.engine, encoder: state.encoder, limits: state.limits, signal };
}
