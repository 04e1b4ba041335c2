/**
 * The serving half of LLMFront, over named graph clients (graph-client.ts): picks the graph a request's
 * `model` names, then serves it through the same RequestGate and route handlers as LLMServer. Also used
 * by a graph to serve its own HTTP (SpeculativePipeline over itself).
 *
 * Which graph: with one graph, every request goes to it and any `model` is taken as its name (as TGI and
 * LLMServer do), unless `strictModelName`. With several, `model` picks one by the name it was bound under;
 * no model picks the first; an unknown name is 404 model_not_found (vLLM's answer), in the route's shape.
 * TGI bodies carry no model: a top-level `model` is read (and removed) if present, else the first graph.
 * A name that is no graph's but one of a graph's GraphInfo.models (a MultiModelServer's catalogue, a
 * MultiLoraServer's adapters) picks that graph, and goes with the request as GraphRequest.model and as the
 * graph calls' multiplexed model id (graph-client.ts), so the graph's router prefers a replica holding it.
 */
import type { GrpcCallInfo, HttpRequestLike } from '@flotilla/core';
import { ModelNotFoundError, ModelUnavailableError } from './errors.js';
import { type CatalogEntry, type FrontContext, findFrontRoute, isTgiRoute } from './front-routes.js';
import { graphBackend } from './graph-backend.js';
import type { GraphClient } from './graph-client.js';
import type { GraphInfo } from './graph.js';
import { graphEmbedder, graphTokenizer } from './graph-tools.js';
import { grpcEmbed, type GrpcEmbedRequest } from './grpc/embed.js';
import { grpcGenerate, grpcGenerateStream, type GrpcGenerateRequest } from './grpc/llm-grpc.js';
import type { HttpChunk, ModelInfo } from './handler-context.js';
import { LLMMetrics, mergeFamilies } from './llm-metrics.js';
import { resolveLimits, type LLMServerLimits } from './llm-server-options.js';
import type { ContextBase, RequestGate } from './request-gate.js';

/** How long /health waits for the graphs' info before answering 503 (loading). */
const HEALTH_WAIT_MS = 2000;

export interface FrontServerOptions {
  /** Only a graph's own name is accepted even when there is one graph. Default false. */
  strictModelName?: boolean;
  limits?: LLMServerLimits;
}

export class FrontServer {
  readonly #graphs: Map<string, GraphClient>;
  readonly #gate: RequestGate;
  readonly #options: FrontServerOptions;
  readonly #createdS = Math.floor(Date.now() / 1000);
  /** Per graph: TTFT, inter-token latency, e2e and finishes as the front sees them (LLMServer's LLMMetrics). */
  readonly #metrics = new Map<string, LLMMetrics>();

  constructor(graphs: Record<string, GraphClient>, gate: RequestGate, options: FrontServerOptions = {}) {
    this.#graphs = new Map(Object.entries(graphs));
    this.#gate = gate;
    this.#options = options;
  }

  get names(): string[] {
    return [...this.#graphs.keys()];
  }

  async *http(req: HttpRequestLike): AsyncGenerator<HttpChunk> {
    if (req.method === 'GET' && (req.path === '/health' || req.path === '/health/')) {
      yield await this.#health();
      return;
    }
    const route = findFrontRoute(req);
    let forward = req;
    const body = isRecord(req.body) ? req.body : undefined;
    if (isTgiRoute(route) && body && 'model' in body) {
      const { model: _model, ...rest } = body;
      forward = { ...req, body: rest };
    }
    const requested = typeof body?.model === 'string' ? body.model : undefined;
    const tgi = isTgiRoute(route);
    yield* this.#gate.http(forward, route, (base) => this.#context(base, requested, tgi || wantsLogprobs(body), tgi));
  }

  grpcGenerate(request: GrpcGenerateRequest, callInfo?: GrpcCallInfo): Promise<unknown> {
    const context = (base: ContextBase) => this.#context(base, request.model, request.logprobs !== undefined);
    return this.#gate.grpcUnary(request, callInfo, 'grpc Generate', context, grpcGenerate);
  }

  grpcGenerateStream(request: GrpcGenerateRequest, callInfo?: GrpcCallInfo): AsyncGenerator<unknown> {
    const context = (base: ContextBase) => this.#context(base, request.model, request.logprobs !== undefined);
    return this.#gate.grpcStream(request, callInfo, 'grpc GenerateStream', context, grpcGenerateStream);
  }

  /** llm.proto Embed over the graph `model` picks (openai/embeddings.ts's code, as LLMServer's). */
  grpcEmbed(request: GrpcEmbedRequest, callInfo?: GrpcCallInfo): Promise<unknown> {
    const context = (base: ContextBase) => this.#context(base, request.model, false);
    return this.#gate.grpcPlain(request, callInfo, 'grpc Embed', context, (r, ctx) =>
      grpcEmbed(r as GrpcEmbedRequest, ctx, ctx.embedder()),
    );
  }

  /** The graph named `requested` (see the top of this file) and its context. */
  async #context(
    base: ContextBase,
    requested: string | undefined,
    tokenInfo: boolean,
    tgi = false,
  ): Promise<FrontContext> {
    const [name, client, model] = await this.#pick(requested);
    const info = await this.#info(client);
    const limits = resolveLimits(this.#options.limits, info.maxModelLen);
    const call = { requestId: base.requestId, name: model ?? name, ...(model !== undefined ? { model } : {}) };
    return {
      ...base,
      backend: graphBackend(client, info, limits, {
        requestId: base.requestId,
        tokenInfo,
        tgi,
        onFinished: (e) => this.#metricsOf(name).observe(e),
        ...(model !== undefined ? { model } : {}),
      }),
      limits,
      model: this.#modelInfo(model ?? name, info),
      catalog: () => this.#catalog(),
      embedder: () => graphEmbedder(client, info, limits, call),
      textTokenizer: () => graphTokenizer(client, info, call),
    };
  }

  /** The front's request metrics (prom-client JSON), one model_name per graph. */
  async collectMetrics(): Promise<unknown[]> {
    const all = await Promise.all([...this.#metrics.values()].map((m) => m.snapshot()));
    return mergeFamilies(all);
  }

  #metricsOf(name: string): LLMMetrics {
    let m = this.#metrics.get(name);
    if (!m) {
      m = new LLMMetrics(name);
      this.#metrics.set(name, m);
    }
    return m;
  }

  /** The graph (its name and client) a request's `model` picks, and the graph's own model it names, if any. */
  async #pick(requested: string | undefined): Promise<[string, GraphClient, string?]> {
    const byName = requested ? this.#graphs.get(requested) : undefined;
    if (byName) return [requested!, byName];
    const within = requested ? await this.#holderOf(requested) : undefined;
    if (within) return [...within, requested];
    if (requested && (this.#graphs.size > 1 || within === null))
      throw new ModelNotFoundError(
        `The model '${requested}' does not exist; this server serves '${this.names.join("', '")}'.`,
        'model',
      );
    const [first] = this.#graphs;
    if (!first) throw new ModelUnavailableError('This front serves no graph.');
    return first;
  }

  /**
   * The graph listing `model` among its GraphInfo.models; null when none does but some graph lists models
   * (the front then serves several models, and another name is not taken as the one graph's); undefined
   * when no graph lists any. Graphs that cannot be reached are skipped.
   */
  async #holderOf(model: string): Promise<[string, GraphClient] | null | undefined> {
    let lists = false;
    for (const [name, client] of this.#graphs) {
      const models = (await client.info().catch(() => undefined))?.models;
      if (models?.includes(model)) return [name, client];
      lists ||= models !== undefined;
    }
    return lists ? null : undefined;
  }

  #modelInfo(name: string, info: GraphInfo): ModelInfo {
    return {
      name,
      path: name,
      randomWeights: info.randomWeights === true,
      createdS: info.createdS ?? this.#createdS,
      strictName: this.#options.strictModelName === true || this.#graphs.size > 1 || info.models !== undefined,
    };
  }

  async #info(client: GraphClient): Promise<GraphInfo> {
    try {
      return await client.info();
    } catch (err) {
      if ((err as { status?: number }).status === 503) throw err;
      throw new ModelUnavailableError(`The graph cannot be reached: ${(err as Error).message}`);
    }
  }

  /** Every graph by its bound name, then the models it lists (GraphInfo.models) by theirs. */
  async #catalog(): Promise<CatalogEntry[]> {
    const perGraph = await Promise.all(
      [...this.#graphs].map(async ([name, client]) => {
        const info = await this.#info(client);
        const own: CatalogEntry = {
          model: this.#modelInfo(name, info),
          maxModelLen: info.maxModelLen,
          ...(info.description ? { description: info.description } : {}),
        };
        const listed = (info.models ?? []).filter((m) => m !== name && !this.#graphs.has(m));
        return [own, ...listed.map((m) => ({ model: this.#modelInfo(m, info), maxModelLen: info.maxModelLen }))];
      }),
    );
    return perGraph.flat();
  }

  /** 200 once every graph answers its info; 503 while any is loading or unreachable. */
  async #health(): Promise<HttpChunk> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the graphs are loading')), HEALTH_WAIT_MS);
    });
    try {
      await Promise.race([Promise.all([...this.#graphs.values()].map((c) => c.info())), timeout]);
      return { status: 200, body: {} };
    } catch (err) {
      return { status: 503, body: { error: `not ready: ${(err as Error).message}`, error_type: 'unhealthy' } };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** OpenAI's logprobs (completions: a number; chat: true) or TGI-style details asked for. */
function wantsLogprobs(body: Record<string, unknown> | undefined): boolean {
  if (!body) return false;
  const lp = body.logprobs;
  return (lp !== undefined && lp !== null && lp !== false) || body.top_logprobs != null;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
