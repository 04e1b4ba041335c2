/**
 * LLMFront: one OpenAI / TGI / llm.proto endpoint over any generation graphs (graph.ts), several behind one
 * endpoint chosen by the request's `model` (as Ray Serve LLM's OpenAI app does). Each graph is a deployment
 * whose class implements GenerationGraph: LLMServer, SpeculativePipeline, HybridRouter, ResponseCache or
 * your own.
 *
 * ```ts
 * @deployment() class Front extends LLMFront {}
 * export const app = Front.bind({ stories: Llm.bind({ model }), speculative: Pipeline.bind(draft, target) },
 *   { apiKeys: ['sk-1'] });
 * ```
 *
 * Serves POST /v1/completions and /v1/chat/completions (the chat template is the graph's model's), GET
 * /v1/models (every graph, by the name it was bound under) and /v1/models/{id}, TGI's POST /generate,
 * /generate_stream and GET /info, /health, and llm.proto's Generate and GenerateStream over gRPC; and, over
 * graphs that declare them (GraphInfo.embeddings, .tokenizer: LLMServer and its subclasses), POST
 * /v1/embeddings and llm.proto's Embed, vLLM's /tokenize and /detokenize. Keys,
 * rate limits (its own buckets or a shared RateLimiter, the third argument), body limits, the PII guard,
 * the audit line and cost accounting are LLMServer's own code (request-gate.ts); requests are parsed and
 * answered by LLMServer's route handlers, so errors have the same shapes and codes.
 */
import type { DeploymentHandle, GrpcCallInfo, HttpRequestLike, IngressKeys } from '@flotilla/core';
import { readKeyFile } from '@flotilla/core';
import { LLMServerConfigError } from './errors.js';
import { FrontServer, type FrontServerOptions } from './front-server.js';
import { handleClient } from './graph-client.js';
import type { GrpcEmbedRequest } from './grpc/embed.js';
import { LLM_GRPC_SERVICE, type GrpcGenerateRequest } from './grpc/llm-grpc.js';
import type { HttpChunk } from './handler-context.js';
import type { RateLimiter } from './rate-limiter.js';
import { type GateOptions, RequestGate } from './request-gate.js';

export interface LLMFrontOptions extends GateOptions, FrontServerOptions {
  /** Keys for /metrics and the proxies' admin routes (as LLMServer's). */
  metricsKeys?: string[];
}

export class LLMFront {
  /** Picked up by `serve run`: llm.proto's Llm service, bound to this deployment (nearest the ingress). */
  static grpcServices = [LLM_GRPC_SERVICE];
  /** A JSON body that does not parse is answered in OpenAI's or TGI's error shape. */
  static handlesMalformedJson = true;

  readonly #gate: RequestGate;
  readonly #server: FrontServer;

  /** `graphs`: model name → handle to a GenerationGraph deployment. `rateLimiter`: as LLMServer's. */
  constructor(
    graphs: Record<string, DeploymentHandle>,
    options: LLMFrontOptions = {},
    rateLimiter?: DeploymentHandle<RateLimiter>,
  ) {
    if (typeof graphs !== 'object' || graphs === null || Object.keys(graphs).length === 0)
      throw new LLMServerConfigError('LLMFront needs { modelName: graph handle, ... } with at least one graph');
    this.#gate = new RequestGate(options, rateLimiter);
    const clients = Object.fromEntries(Object.entries(graphs).map(([name, h]) => [name, handleClient(h)]));
    this.#server = new FrontServer(clients, this.#gate, options);
  }

  /** The keys `serve run` gives the proxies (core's declaredKeysOf), as LLMServer.ingressKeys. */
  static ingressKeys(_graphs: unknown, options: LLMFrontOptions = {}): IngressKeys {
    return {
      apiKeys: [...(options.apiKeys ?? []), ...(options.apiKeyFile ? readKeyFile(options.apiKeyFile) : [])],
      adminKeys: options.adminKeys ?? [],
      metricsKeys: options.metricsKeys ?? [],
    };
  }

  async *handleHttp(req: HttpRequestLike): AsyncGenerator<HttpChunk> {
    yield* this.#server.http(req);
  }

  /** llm.proto Generate; `model` picks the graph. */
  grpcGenerate(request: GrpcGenerateRequest, callInfo?: GrpcCallInfo): Promise<unknown> {
    return this.#server.grpcGenerate(request, callInfo);
  }

  /** llm.proto GenerateStream; `model` picks the graph. */
  async *grpcGenerateStream(request: GrpcGenerateRequest, callInfo?: GrpcCallInfo): AsyncGenerator<unknown> {
    yield* this.#server.grpcGenerateStream(request, callInfo);
  }

  /** llm.proto Embed; `model` picks the graph (one that declares GraphInfo.embeddings). */
  grpcEmbed(request: GrpcEmbedRequest, callInfo?: GrpcCallInfo): Promise<unknown> {
    return this.#server.grpcEmbed(request, callInfo);
  }

  /** The names requests may give as `model`, in binding order (the first is the default). */
  models(): string[] {
    return this.#server.names;
  }

  /**
   * For the proxy's /metrics: per graph (model_name), TTFT, inter-token latency, e2e latency and finishes as
   * the front sees them (LLMServer's flotilla_llm_ histograms), and the PII guard's counters. The graphs'
   * engines report their own (queues, KV use, tokens).
   */
  async collectMetrics(): Promise<unknown[]> {
    return [...(await this.#server.collectMetrics()), ...(await this.#gate.piiMetrics())];
  }

  /** Tokens served through the front (core's cost ledger prices them at the front's own prices, if any). */
  autoscalingMetrics(): Record<string, number> {
    return this.#gate.usageCounters.report();
  }
}
