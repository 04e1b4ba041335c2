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
 * body size) before it can reach the engine, and leaves one audit line. The replica calls dispose() once
 * when it stops, which frees the engine's native memory.
 */
import { performance } from 'node:perf_hooks';
import type { DeploymentHandle, GrpcCallInfo, HttpRequestLike, IngressKeys } from '@flotilla/core';
import { KeyRing, getRequestContext, modelLoadProgress, readKeyFile } from '@flotilla/core';
import { LLMEngine, type EngineSpeculativeOptions, type EngineStats } from '@flotilla/engine';
import { AuditLog } from './audit-log.js';
import { COST_HEADER, deploymentPrices, formatUsd, requestCostUsd, UsageCounters } from './request-cost.js';
import { engineSpeculation, speculationBanner } from './engine-speculation.js';
import {
  AuthenticationError,
  LLMServerConfigError,
  ModelUnavailableError,
  RateLimiterUnavailableError,
  UnsupportedTaskError,
} from './errors.js';
import { estimatedTokens, type HandlerContext, type HttpChunk, type ModelInfo } from './handler-context.js';
import { findRoute } from './http-routes.js';
import { Guard, admissionOf, checkBodySize, type Admission, type RateDecision } from './guard.js';
import {
  LLM_GRPC_SERVICE,
  grpcAuthHeaders,
  grpcClientOf,
  grpcGenerate,
  grpcGenerateStream,
  toCoreError,
  type GrpcGenerateRequest,
} from './grpc/llm-grpc.js';
import { grpcEmbed, type GrpcEmbedRequest } from './grpc/embed.js';
import { LLMMetrics } from './llm-metrics.js';
import { llmRoutingKey, ROUTING_KEY_CHARS } from './llm-routing-key.js';
import { resolveLimits, type LLMServerOptions, type ResolvedLimits } from './llm-server-options.js';
import { checkModelPaths, randomWeightsBanner, resolveModelSource } from './model-source.js';
import { malformedBodyError } from './malformed-body.js';
import { OffLoopTokenizer } from './off-loop-tokenizer.js';
import type { RateLimiter } from './rate-limiter.js';
import { Registry } from 'prom-client';
import { type GuardHooks, guardGrpcReply, guardGrpcRequest, guardGrpcStream, guardHttp } from './guards/guard-flow.js';
import { PiiFilter } from './pii/pii-filter.js';
import { piiDetectionsCounter, piiOutputFilter } from './pii/pii-guard.js';

/** What a loaded server holds; absent while loading. */
export interface LoadedState {
  engine: LLMEngine;
  model: ModelInfo;
  limits: ResolvedLimits;
  /** The engine's tokenizer, with long texts encoded off the event loop. */
  encoder: OffLoopTokenizer;
}

export class LLMServer {
  /** Picked up by `serve run` (grpcServicesOf): the Llm service of protos/llm.proto, served by this deployment. */
  static grpcServices = [LLM_GRPC_SERVICE];
  /** The proxy hands over a JSON body that does not parse, so that it is answered in OpenAI's or TGI's error shape. */
  static handlesMalformedJson = true;
  /** Leading prompt characters that make up the routing key; a subclass may set its own. Default: 256. */
  static routingKeyChars = ROUTING_KEY_CHARS;

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
  readonly guard: Guard;
  #state: LoadedState | undefined;
  #loadError: Error | undefined;
  readonly #loading: Promise<LoadedState>;
  readonly #audit: AuditLog;
  /** Tokens served by this replica, for cost accounting (request-cost.ts). */
  readonly #usageCounters = new UsageCounters();
  /** This server's own admin keys, for model paths when the proxy has no keys (see #isAdmin). */
  readonly #adminKeys: KeyRing;
  #metrics: LLMMetrics | undefined;
  /** The engine's speculative-decoding option, from options (engine-speculation.ts); undefined: off. */
  readonly #speculative: EngineSpeculativeOptions | undefined;
  /** The built-in PII guard (options.pii) and its counters; undefined when off. */
  readonly #pii: GuardHooks | undefined;
  readonly #piiRegistry = new Registry();
  readonly #rateLimiter: DeploymentHandle<RateLimiter> | undefined;
  #disposing: Promise<void> | undefined;

  /**
   * `rateLimiter`: a RateLimiter deployment (`LLM.bind(options, Limits.bind({ requests, tokens }))`) holding
   * the per-key buckets for every replica, so that a key's limit holds however many replicas serve it (one
   * handle call per request); not together with `options.rateLimits`. Default: none.
   */
  constructor(options: LLMServerOptions = {}, rateLimiter?: DeploymentHandle<RateLimiter>) {
    if (typeof options !== 'object' || options === null)
      throw new LLMServerConfigError('LLMServer options must be an object');
    if (options.quantize !== undefined && options.quantize !== 'int8' && options.quantize !== 'int4') {
      throw new LLMServerConfigError(`quantize must be 'int8' or 'int4', got ${JSON.stringify(options.quantize)}`);
    }
    if (options.task !== undefined && !['auto', 'generate', 'embed'].includes(options.task))
      throw new LLMServerConfigError(`task must be 'auto', 'generate' or 'embed', got ${JSON.stringify(options.task)}`);
    if (options.pooling !== undefined && options.pooling !== 'mean' && options.pooling !== 'last')
      throw new LLMServerConfigError(`pooling must be 'mean' or 'last', got ${JSON.stringify(options.pooling)}`);
    checkModelPaths(options.model, options.tokenizer);
    this.#speculative = engineSpeculation(options);
    if (rateLimiter && options.rateLimits) {
      throw new LLMServerConfigError(
        'give rateLimits (buckets in each replica) or rateLimiter (buckets shared by all replicas), not both',
      );
    }
    this.options = options;
    this.#rateLimiter = rateLimiter;
    this.guard = new Guard({
      // Admin keys call the APIs too (they may do everything).
      apiKeys: [...(options.apiKeys ?? []), ...(options.adminKeys ?? [])],
      apiKeyFile: options.apiKeyFile,
      rateLimits: options.rateLimits,
    });
    this.#adminKeys = new KeyRing({ adminKeys: options.adminKeys ?? [] });
    this.#audit = new AuditLog(options.auditLog ?? 'stderr');
    if (options.pii) {
      const detections = piiDetectionsCounter(this.#piiRegistry);
      const filter = new PiiFilter(options.pii, (kind, where, n, mode) => detections.inc({ kind, where, mode }, n));
      this.#pii = {
        checkPrompt: async (text, param) => filter.checkPrompt(text, param),
        outputFilter: () => (filter.options.outputs ? piiOutputFilter(filter) : null),
      };
    }
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
    const started = performance.now();
    const route = findRoute(req);
    const ctxBase = { requestId: req.requestId, signal: getRequestContext()?.signal };
    const usage = { promptTokens: 0, completionTokens: 0 };
    let keyId = 'unauthenticated';
    let status = 0;
    let errorCode: string | undefined;
    let admission: Admission | undefined;
    let ctx: HandlerContext | undefined;
    try {
      // The proxy's key check comes first: refused there, refused here, in this route's error shape.
      if (req.authError !== undefined) throw new AuthenticationError(req.authError);
      if (route.authenticated) keyId = req.auth ? req.auth.keyId : this.guard.authenticate(req.headers, req.clientIp);
      if (req.method === 'POST') {
        checkBodySize(
          req.headers,
          req.body,
          this.options.limits?.maxBodyBytes ?? resolveLimits(undefined, 2).maxBodyBytes,
        );
        if (req.bodyError !== undefined) throw malformedBodyError(req.bodyError);
      }
      this.#checkTask(route.generates, route.embeds === true, route.name);
      const state = await this.#ready();
      ctx = {
        ...ctxBase,
        engine: state.engine,
        limits: state.limits,
        model: this.#isAdmin(req) ? state.model : withoutPath(state.model),
        encoder: state.encoder,
        usage,
        admit: async (p) => {
          admission = await this.#admit(keyId, estimatedTokens(p));
        },
      };
      const c = ctx;
      const chunks = this.#pii ? guardHttp(req, this.#pii, (r) => route.handler(r, c)) : route.handler(req, ctx);
      for await (const chunk of chunks) {
        if (typeof chunk !== 'string' && status === 0) {
          status = chunk.status;
          // A whole reply's head comes after its tokens were counted: it can say what they cost.
          const cost =
            chunk.body !== undefined && status === 200 ? requestCostUsd(deploymentPrices(), usage) : undefined;
          if (cost !== undefined) {
            yield { ...chunk, headers: { ...chunk.headers, [COST_HEADER]: formatUsd(cost) } };
            continue;
          }
        }
        yield chunk;
      }
    } catch (err) {
      errorCode = (err as { code?: string }).code ?? 'E_INTERNAL';
      if (status !== 0) throw err;
      const head = route.renderError(err);
      status = head.status;
      yield head;
    } finally {
      if (admission) this.#settle(admission, usage.promptTokens + usage.completionTokens);
      if (ctxBase.signal?.aborted && status < 400) status = 499;
      this.#usageCounters.add(usage);
      const costUsd = requestCostUsd(deploymentPrices(), usage);
      this.#audit.record({
        requestId: req.requestId,
        keyId,
        route: route.name,
        status,
        promptTokens: usage.promptTokens,
        completionTokens: usage.completionTokens,
        ...(costUsd !== undefined ? { costUsd } : {}),
        latencyMs: performance.now() - started,
        ...(this.options.logPrompts && ctx?.promptText !== undefined ? { prompt: ctx.promptText } : {}),
        ...(errorCode ? { error: errorCode } : {}),
      });
    }
  }

  /**
   * gRPC Generate (protos/llm.proto); also callable through a handle. The API key comes from the call's
   * `authorization: Bearer KEY` metadata (callInfo, passed by the gRPC proxy) or else the request's api_key.
   */
  async grpcGenerate(request: GrpcGenerateRequest, callInfo?: GrpcCallInfo): Promise<unknown> {
    const call = await this.#grpcCall(request, callInfo, 'grpc Generate');
    try {
      const checked = this.#pii
        ? ((await guardGrpcRequest({ ...request }, this.#pii)) as GrpcGenerateRequest)
        : request;
      const reply = await grpcGenerate(checked, call.ctx);
      call.end(0);
      return this.#pii ? guardGrpcReply(reply, this.#pii) : reply;
    } catch (err) {
      call.end(1, err);
      throw toCoreError(err);
    }
  }

  /** gRPC GenerateStream; also callable through a handle (`handle.stream.grpcGenerateStream(req)`). */
  async *grpcGenerateStream(request: GrpcGenerateRequest, callInfo?: GrpcCallInfo): AsyncGenerator<unknown> {
    const call = await this.#grpcCall(request, callInfo, 'grpc GenerateStream');
    let failed: unknown;
    try {
      if (this.#pii) {
        const checked = (await guardGrpcRequest({ ...request }, this.#pii)) as GrpcGenerateRequest;
        yield* guardGrpcStream(grpcGenerateStream(checked, call.ctx), this.#pii);
      } else yield* grpcGenerateStream(request, call.ctx);
    } catch (err) {
      failed = err;
      throw toCoreError(err);
    } finally {
      call.end(failed === undefined ? 0 : 1, failed);
    }
  }

  /** gRPC Embed (embeddings, as /v1/embeddings); also callable through a handle. */
  async grpcEmbed(request: GrpcEmbedRequest, callInfo?: GrpcCallInfo): Promise<unknown> {
    const call = await this.#grpcCall(request as GrpcGenerateRequest, callInfo, 'grpc Embed');
    try {
      const reply = await grpcEmbed(request, call.ctx);
      call.end(0);
      return reply;
    } catch (err) {
      call.end(1, err);
      throw toCoreError(err);
    }
  }

  /** The engine's counters (for tests, dashboards and autoscaling signals); null while loading. */
  engineStats(): (EngineStats & { debug: ReturnType<LLMEngine['debugCounts']> }) | null {
    const engine = this.#state?.engine;
    return engine ? { ...engine.stats(), debug: engine.debugCounts() } : null;
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

  /**
   * May this request see the model's file path? An admin key (checked by the proxy, or by this server's
   * own adminKeys); on a server with no keys at all, everyone (it listens on loopback unless told otherwise).
   */
  #isAdmin(req: HttpRequestLike): boolean {
    if (req.auth) return req.auth.role === 'admin';
    if (this.#adminKeys.enabled) return this.#adminKeys.check(req.headers.authorization, 'admin').ok;
    return !this.guard.requiresKey;
  }

  /** Replica metrics for the proxy's /metrics (prom-client JSON); see packages/core's collectMetrics. */
  async collectMetrics(): Promise<unknown[]> {
    const own = this.#metrics ? await this.#metrics.snapshot() : [];
    return this.#pii ? [...own, ...(await this.#piiRegistry.getMetricsAsJSON())] : own;
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
    return { ...load, ...this.#usageCounters.report() };
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
      const state = this.#state ?? (await this.#loading.catch(() => undefined));
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
    const o = this.options;
    const source = await resolveModelSource(o.model, o.tokenizer);
    if (source.randomWeights) process.stderr.write(randomWeightsBanner(source));
    const engine = await LLMEngine.create({
      model: source.path,
      ...(source.tokenizer !== undefined ? { tokenizerPath: source.tokenizer } : {}),
      ...(o.quantize ? { weightFormat: o.quantize } : {}),
      ...(o.kvCacheDtype ? { kvDtype: o.kvCacheDtype } : {}),
      ...(this.#speculative ? { speculative: this.#speculative } : {}),
      // A bar on a terminal, a few plain lines otherwise: loading (and quantizing) a big model takes a while.
      onProgress: modelLoadProgress(o.quantize ? `${source.defaultName} (${o.quantize})` : source.defaultName),
      ...pick(o, [
        'kvCacheBytes',
        'maxNumSeqs',
        'maxNumBatchedTokens',
        'maxModelLen',
        'enablePrefixCaching',
        'numThreads',
        'device',
        'chatTemplate',
        'pooling',
      ]),
    });
    if (this.#speculative) process.stderr.write(speculationBanner(this.#speculative));
    const model: ModelInfo = {
      name: o.servedModelName ?? source.defaultName,
      path: source.path,
      randomWeights: source.randomWeights,
      createdS: Math.floor(Date.now() / 1000),
      strictName: o.strictModelName === true,
    };
    this.#metrics = new LLMMetrics(model.name, {
      vllm: o.vllmMetrics ?? true,
      maxModelLen: engine.maxModelLen,
      ...(this.#speculative ? { numSpeculativeTokens: this.#speculative.k } : {}),
    });
    this.#metrics.attach(engine);
    const encoder = new OffLoopTokenizer(engine.tokenizer, { model: source.path, tokenizer: source.tokenizer });
    this.#state = { engine, model, limits: resolveLimits(o.limits, engine.maxModelLen), encoder };
    return this.#state;
  }

  /** Refuses a route the server's task does not serve (options.task), as UnsupportedTaskError (400). */
  #checkTask(generates: boolean, embeds: boolean, what: string): void {
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
    try {
      return await this.#loading;
    } catch (err) {
      throw new ModelUnavailableError(`The model failed to load: ${(err as Error).message}`);
    }
  }

  /** Authenticates, waits for the model and returns the context plus `end`, which settles the rate limit and writes the audit line. */
  async #grpcCall(
    request: GrpcGenerateRequest,
    callInfo: GrpcCallInfo | undefined,
    route: string,
  ): Promise<{ ctx: HandlerContext; end: (failed: number, err?: unknown) => void }> {
    const rc = getRequestContext();
    const requestId = rc?.requestId ?? `grpc-${Date.now()}`;
    const started = performance.now();
    let keyId = 'unauthenticated';
    let admission: Admission | undefined;
    const usage = { promptTokens: 0, completionTokens: 0 };
    const end = (failed: number, err?: unknown) => {
      if (admission) this.#settle(admission, usage.promptTokens + usage.completionTokens);
      const code = (err as { code?: string } | undefined)?.code;
      this.#usageCounters.add(usage);
      const costUsd = requestCostUsd(deploymentPrices(), usage);
      this.#audit.record({
        requestId,
        keyId,
        route,
        status: failed ? ((err as { status?: number }).status ?? 500) : 200,
        promptTokens: usage.promptTokens,
        completionTokens: usage.completionTokens,
        ...(costUsd !== undefined ? { costUsd } : {}),
        latencyMs: performance.now() - started,
        ...(code ? { error: code } : {}),
      });
    };
    try {
      keyId = callInfo?.auth
        ? callInfo.auth.keyId
        : this.guard.authenticate(grpcAuthHeaders(request, callInfo), grpcClientOf(callInfo));
      this.#checkTask(route !== 'grpc Embed', route === 'grpc Embed', route);
      const state = await this.#ready();
      const ctx: HandlerContext = {
        requestId,
        signal: rc?.signal,
        engine: state.engine,
        limits: state.limits,
        model: state.model,
        encoder: state.encoder,
        usage,
        admit: async (p) => {
          admission = await this.#admit(keyId, estimatedTokens(p));
        },
      };
      return { ctx, end };
    } catch (err) {
      end(1, err);
      throw toCoreError(err);
    }
  }

  /** Rate limits: the shared RateLimiter when there is one, else this replica's buckets. Throws RateLimitError. */
  async #admit(keyId: string, estimated: number): Promise<Admission> {
    const limiter = this.#rateLimiter;
    if (!limiter) return this.guard.admit(keyId, estimated);
    let decision: RateDecision;
    try {
      decision = await limiter.admit(keyId, estimated);
    } catch (err) {
      if (getRequestContext()?.signal.aborted) throw err; // the client left: not the limiter's fault
      throw new RateLimiterUnavailableError(`The rate limiter cannot be reached: ${(err as Error).message}`);
    }
    return admissionOf(keyId, decision);
  }

  #settle(admission: Admission, usedTokens: number): void {
    const limiter = this.#rateLimiter;
    if (!limiter) return this.guard.settle(admission, usedTokens);
    if (admission.reservedTokens === 0) return;
    // A signal of its own: the request's may already be aborted (client gone), and the refund must still arrive.
    limiter
      .options({ signal: new AbortController().signal })
      .settle(admission.keyId, admission.reservedTokens, usedTokens)
      .catch(() => {
        /* the limiter is gone; its buckets went with it */
      });
  }

  #health(): HttpChunk {
    if (this.#disposing)
      return { status: 503, body: { error: 'the server is shutting down', error_type: 'unhealthy' } };
    if (this.#state) return { status: 200, body: {} };
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

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
