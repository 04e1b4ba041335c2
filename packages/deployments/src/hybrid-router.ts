/**
 * HybridRouter: sends each generate request to a small or a large model deployment. The choice comes
 * from `classify()` — by default a cheap heuristic over prompt length and content; with
 * `classifier: 'confidence'`, the small model's own confidence (mean logprob of its first greedy
 * tokens); subclasses override classify() for anything else. Each decision and its estimated cost
 * are counted in the replica's prom-client registry (collectMetrics(), as LLMServer): its cost in
 * dollars (`costPer1kTokens` × the tokens the response reports, or an estimate where it reports none)
 * and the savings against the large model answering everything. When a model fails, calls are retried
 * with exponential backoff and then go to the other model; a circuit breaker per model stops sending
 * to one that keeps failing until a probe succeeds.
 *
 * It serves the models' own APIs: OpenAI and TGI over HTTP (`handleHttp` forwards each request to the
 * chosen model's LLMServer, with `x-flotilla-model: small|large` on the reply: hybrid-http.ts), llm.proto over gRPC
 * (`grpcGenerate`, `grpcGenerateStream`) and handles (`generate`). A request whose `model` names one of
 * the two models goes to it; no model, the router's own name (`servedModelName`, default 'hybrid') or any
 * other name (as TGI; `strictModelName`: vLLM's 404) lets the classifier choose. It is also a GenerationGraph (graph.ts), so an LLMFront can serve it among other
 * graphs: tokenizePrompt classifies and asks the chosen model, generateStream streams that model's deltas
 * (the other model's before the first delta if it fails); there the front's `model` names the graph.
 *
 * ```ts
 * @deployment() class Router extends HybridRouter {}
 * export const app = Router.bind(Small.bind({ model: s }), Large.bind({ model: l }), { classifier: 'heuristic' });
 * ```
 */
import type { DeploymentHandle, GrpcCallInfo, HttpRequestLike } from '@flotilla/core';
import { Counter, Registry } from 'prom-client';
import { backoffDelayMs, CircuitBreaker, type BackoffOptions, type CircuitBreakerOptions } from './circuit-breaker.js';
import { ModelNotFoundError } from './errors.js';
import {
  GRAPH_METHODS,
  type GenerationGraph,
  type GraphDelta,
  type GraphInfo,
  type GraphPrepared,
  type GraphRequest,
} from './graph.js';
import { GRAPH_INTERNAL_METHODS } from './graph.js';
import { LLM_GRPC_SERVICE } from './grpc/llm-grpc.js';
import { noModelAnswered } from './hybrid-errors.js';
import { type Attempt, forwardHttp, type HybridCalls, type Routed } from './hybrid-http.js';
import type { HttpChunk, ModelInfo } from './handler-context.js';
import {
  bodyOf,
  DEFAULT_COST_PER_1K_TOKENS,
  estimatedTokens,
  heuristicChoice,
  isClientError,
  openStream,
  promptText,
  reportedTokens,
  type HeuristicOptions,
  type ModelChoice,
} from './hybrid-policy.js';

export { HybridUnavailableError } from './hybrid-errors.js';
export {
  DEFAULT_COST_PER_1K_TOKENS,
  estimatedCost,
  estimatedTokens,
  heuristicChoice,
  promptText,
  reportedTokens,
  type HeuristicOptions,
  type ModelChoice,
} from './hybrid-policy.js';

export interface HybridRouterOptions {
  /** 'heuristic' (prompt length and content) or 'confidence' (the small model's mean logprob). Default 'heuristic'. */
  classifier?: 'heuristic' | 'confidence';
  heuristic?: HeuristicOptions;
  /** Small model's mean logprob over its first `probeTokens` greedy tokens at or above which it answers. Default -1.5. */
  confidenceThreshold?: number;
  /** Tokens the confidence probe generates. Default 4. */
  probeTokens?: number;
  /**
   * US dollars per 1,000 tokens (prompt + completion) of each model, for the cost and savings metrics.
   * Default { small: 0.0001, large: 0.001 }: placeholders in a 1:10 ratio; give your models' prices.
   */
  costPer1kTokens?: Record<ModelChoice, number>;
  /** Retries per model before falling back. Default 2. */
  retries?: number;
  backoff?: BackoffOptions;
  breaker?: Omit<CircuitBreakerOptions, 'now'>;
  /** Downstream method called with the request by generate/grpcGenerate. Default 'grpcGenerate' (LLMServer's). */
  method?: string;
  /** Downstream streaming method of grpcGenerateStream. Default 'grpcGenerateStream' (LLMServer's). */
  streamMethod?: string;
  /** The router's own model name: a request naming it (or none) lets the classifier choose. Default 'hybrid'. */
  servedModelName?: string;
  /**
   * vLLM's 404 model_not_found for a name that is neither the router's nor a model's. Default false: the
   * router is one endpoint, so (as TGI) any other name, such as the endpoint URL or 'tgi' that Hugging Face's
   * clients send, is taken as the router's and the classifier chooses.
   */
  strictModelName?: boolean;
}

export class HybridRouter implements GenerationGraph {
  /** The graph methods the front calls (graph.ts): through handles only, never from a proxy's client. */
  static internalMethods: readonly string[] = GRAPH_INTERNAL_METHODS;
  /** Serves llm.proto itself (`serve run` binds it to the declarer nearest the ingress), choosing per request. */
  static grpcServices = [LLM_GRPC_SERVICE];
  /** Malformed JSON is forwarded as it came, so a model answers it in its own API's shape. */
  static handlesMalformedJson = true;

  protected readonly options: HybridRouterOptions;
  private readonly breakers: Record<ModelChoice, CircuitBreaker>;
  private readonly registry = new Registry();
  private readonly decisions: Counter<'model' | 'reason'>;
  private readonly cost: Counter<'model'>;
  private readonly savings: Counter;
  private readonly failures: Counter<'model'>;
  #names: Partial<Record<ModelChoice, string>> = {};
  /** What the HTTP forwarding (hybrid-http.ts) uses of the router. */
  readonly #calls: HybridCalls = {
    alias: () => this.options.servedModelName ?? 'hybrid',
    route: (req, unnamed) => this.#route(req, unnamed),
    named: (name) => this.#named(name),
    handle: (model) => this.#handle(model),
    withRetries: (model, call) => this.#withRetries(model, call),
    answered: (model, reason, req, tokens) => this.#answered(model, reason, req, tokens),
  };

  constructor(
    private readonly small: DeploymentHandle,
    private readonly large: DeploymentHandle,
    options: HybridRouterOptions = {},
  ) {
    this.options = options;
    this.breakers = { small: new CircuitBreaker(options.breaker), large: new CircuitBreaker(options.breaker) };
    const registers = [this.registry];
    this.decisions = new Counter({
      name: 'flotilla_hybrid_decisions_total',
      help: 'Requests answered per model and why (classifier, fallback, or requested by name).',
      labelNames: ['model', 'reason'],
      registers,
    });
    this.cost = new Counter({
      name: 'flotilla_hybrid_cost_usd_total',
      help: 'Cost of answered requests per model in US dollars (costPer1kTokens x tokens; estimated where a reply reports none).',
      labelNames: ['model'],
      registers,
    });
    this.savings = new Counter({
      name: 'flotilla_hybrid_savings_usd_total',
      help: 'Dollars saved against the large model answering every request (its price minus the answering model price, x tokens).',
      registers,
    });
    this.failures = new Counter({
      name: 'flotilla_hybrid_failures_total',
      help: 'Failed calls per model (each retry counts).',
      labelNames: ['model'],
      registers,
    });
  }

  /** Which model should answer; override for a custom classifier. */
  protected async classify(req: Record<string, unknown>): Promise<ModelChoice> {
    if (this.options.classifier !== 'confidence') return heuristicChoice(promptText(req), this.options.heuristic);
    try {
      // Only the prompt goes into the probe: the request may be an HTTP body with fields llm.proto lacks.
      const probe = {
        ...(Array.isArray(req.messages) ? { messages: req.messages } : { prompt: promptText(req) }),
        temperature: 0,
        max_tokens: this.options.probeTokens ?? 4,
        logprobs: 0,
        n: 1,
      };
      const res = (await this.small.remote(this.options.method ?? 'grpcGenerate', [probe])) as {
        choices?: Array<{ logprobs?: Array<{ logprob: number }> }>;
      };
      const lps = res.choices?.[0]?.logprobs?.map((l) => l.logprob) ?? [];
      const mean = lps.length > 0 ? lps.reduce((a, b) => a + b, 0) / lps.length : -Infinity;
      return mean >= (this.options.confidenceThreshold ?? -1.5) ? 'small' : 'large';
    } catch {
      return 'large'; // the small model cannot even probe: do not send it the request
    }
  }

  /** Answers from the chosen model, falling back to the other one when it fails. */
  async generate(req: Record<string, unknown>, callInfo?: GrpcCallInfo): Promise<unknown> {
    const { order, request, reason } = await this.#route(req, (r) => ({ ...r, model: '' }));
    let lastError: unknown;
    for (const model of order) {
      const args = [request, ...(callInfo ? [callInfo] : [])];
      const attempt = await this.#withRetries(model, (h) => h.remote(this.options.method ?? 'grpcGenerate', args));
      if (attempt.ok) {
        this.#answered(model, model === order[0] ? reason : 'fallback', req, reportedTokens(attempt.value));
        return attempt.value;
      }
      lastError = attempt.error ?? lastError;
    }
    throw noModelAnswered(lastError);
  }

  /** llm.proto Generate (gRPC and handles): as generate(), passing the call's metadata on. */
  grpcGenerate(req: Record<string, unknown>, callInfo?: GrpcCallInfo): Promise<unknown> {
    return this.generate(req, callInfo);
  }

  /** llm.proto GenerateStream: the chosen model's stream; before its first message a failure falls back. */
  async *grpcGenerateStream(req: Record<string, unknown>, callInfo?: GrpcCallInfo): AsyncGenerator<unknown> {
    const { order, request, reason } = await this.#route(req, (r) => ({ ...r, model: '' }));
    const method = this.options.streamMethod ?? 'grpcGenerateStream';
    let lastError: unknown;
    for (const model of order) {
      const attempt = await this.#withRetries(model, (h) =>
        openStream(h.remoteStream(method, [request, ...(callInfo ? [callInfo] : [])]) as AsyncIterable<unknown>),
      );
      if (!attempt.ok) {
        lastError = attempt.error ?? lastError;
        continue;
      }
      let tokens: number | undefined;
      for await (const item of attempt.value.value) {
        tokens = reportedTokens(item) ?? tokens;
        yield item;
      }
      this.#answered(model, model === order[0] ? reason : 'fallback', req, tokens);
      return;
    }
    throw noModelAnswered(lastError);
  }

  /**
   * The models' HTTP APIs (OpenAI, TGI), forwarded to the chosen model's handleHttp (hybrid-http.ts): with
   * `x-flotilla-model` on the reply; before the reply's head a failure (a thrown call, a 5xx) falls back to
   * the other. GET /v1/models lists the router's name and both models; /health is 200 while either model is.
   */
  async *handleHttp(req: HttpRequestLike): AsyncGenerator<HttpChunk> {
    yield* forwardHttp(this.#calls, req);
  }

  /** GenerationGraph: the router under its own name; the shorter context of the two models. */
  async graphInfo(): Promise<GraphInfo> {
    const [small, large] = (await Promise.all(
      (['small', 'large'] as const).map((m) => this.#handle(m).remote(GRAPH_METHODS.info, [])),
    )) as [GraphInfo, GraphInfo];
    return {
      name: this.options.servedModelName ?? 'hybrid',
      maxModelLen: Math.min(small.maxModelLen, large.maxModelLen),
      createdS: Math.min(small.createdS, large.createdS),
      description: `routes each request to the small (${small.name}) or the large (${large.name}) model`,
    };
  }

  /** GenerationGraph: classifies the prompt, then the chosen model tokenizes and checks it (the other if it fails). */
  async tokenizePrompt(req: GraphRequest): Promise<GraphPrepared> {
    const body = bodyOf(req.prompt);
    const first = await this.classify(body);
    const order: ModelChoice[] = [first, first === 'small' ? 'large' : 'small'];
    let lastError: unknown;
    for (const model of order) {
      const attempt = await this.#withRetries(
        model,
        (h) => h.remote(GRAPH_METHODS.tokenize, [req]) as Promise<GraphPrepared>,
      );
      if (attempt.ok)
        return { ...attempt.value, state: { model, reason: model === first ? 'classifier' : 'fallback' } };
      lastError = attempt.error ?? lastError;
    }
    throw noModelAnswered(lastError);
  }

  /** GenerationGraph: the chosen model's deltas; a failure before the first falls back to the other model. */
  async *generateStream(req: GraphRequest): AsyncGenerator<GraphDelta> {
    const body = bodyOf(req.prompt);
    const state = req.prepared?.state as { model?: ModelChoice; reason?: string } | undefined;
    const first = state?.model ?? (await this.classify(body));
    const reason = state?.reason ?? 'classifier';
    let lastError: unknown;
    for (const model of [first, first === 'small' ? 'large' : 'small'] as const) {
      // The other model may tokenize differently: it gets the prompt, not the first one's token ids.
      const sent = model === first ? req : { ...req, prepared: undefined };
      const attempt = await this.#withRetries(model, (h) =>
        openStream(h.remoteStream(GRAPH_METHODS.generate, [sent]) as AsyncIterable<GraphDelta>),
      );
      if (!attempt.ok) {
        lastError = attempt.error ?? lastError;
        continue;
      }
      const completion: number[] = [];
      let prompt = 0;
      for await (const d of attempt.value.value) {
        prompt = d.usage.promptTokens;
        completion[d.index] = d.usage.completionTokens;
        yield d;
      }
      const tokens = prompt + completion.reduce((a, b) => a + (b ?? 0), 0);
      this.#answered(model, model === first ? reason : 'fallback', body, tokens);
      return;
    }
    throw noModelAnswered(lastError);
  }

  /** Decisions per model and reason, failures, dollars spent and saved, and breaker states (for tests and dashboards). */
  async routerStats(): Promise<{
    decisions: Record<string, number>;
    failures: Record<string, number>;
    costUsd: Record<string, number>;
    savingsUsd: number;
    breakers: Record<ModelChoice, string>;
  }> {
    const flat = async (c: Counter<string>) =>
      Object.fromEntries((await c.get()).values.map((v) => [Object.values(v.labels).join('/'), v.value]));
    return {
      decisions: await flat(this.decisions),
      failures: await flat(this.failures),
      costUsd: await flat(this.cost),
      savingsUsd: (await this.savings.get()).values[0]?.value ?? 0,
      breakers: { small: this.breakers.small.state, large: this.breakers.large.state },
    };
  }

  async collectMetrics(): Promise<unknown[]> {
    return this.registry.getMetricsAsJSON();
  }

  /**
   * The order to try the models in, the request to send them, and why the first: a request naming a model
   * goes to it alone ('requested'), one naming none or the router lets the classifier choose ('classifier', with
   * `unnamed` removing the name); any other name too, unless strictModelName (then ModelNotFoundError, 404).
   */
  async #route(
    req: Record<string, unknown>,
    unnamed: (req: Record<string, unknown>) => Record<string, unknown>,
  ): Promise<Routed> {
    const name = req.model;
    const alias = this.options.servedModelName ?? 'hybrid';
    let first: ModelChoice;
    let reason = 'classifier';
    let request = req;
    const unnamedName = name === undefined || name === '' || name === alias;
    const named = unnamedName ? undefined : await this.#named(name);
    if (named) {
      first = named;
      reason = 'requested';
    } else {
      if (!unnamedName && this.options.strictModelName === true) {
        const known = [alias, this.#names.small, this.#names.large].filter(Boolean).join("', '");
        throw new ModelNotFoundError(
          `The model '${String(name)}' does not exist; this router serves '${known}'.`,
          'model',
        );
      }
      first = await this.classify(req);
      if (name !== undefined) request = unnamed(req);
    }
    // A model asked for by name is not swapped for the other (which would refuse its name anyway).
    return {
      order: reason === 'requested' ? [first] : [first, first === 'small' ? 'large' : 'small'],
      request,
      reason,
    };
  }

  /** Which model a request's `model` names, if either (asking each LLMServer its name once it has loaded). */
  async #named(name: unknown): Promise<ModelChoice | undefined> {
    if (typeof name !== 'string' || name === '') return undefined;
    for (const m of ['small', 'large'] as const) {
      if (this.#names[m] === undefined) {
        const info = (await this.#handle(m)
          .remote('modelInfo', [])
          .catch(() => null)) as ModelInfo | null;
        if (info) this.#names[m] = info.name;
      }
      if (this.#names[m] === name) return m;
    }
    return undefined;
  }

  #handle(model: ModelChoice): DeploymentHandle {
    return model === 'small' ? this.small : this.large;
  }

  #answered(model: ModelChoice, reason: string, req: Record<string, unknown>, tokens: number | undefined): void {
    this.decisions.inc({ model, reason });
    const n = tokens ?? estimatedTokens(req);
    const price = this.options.costPer1kTokens ?? DEFAULT_COST_PER_1K_TOKENS;
    this.cost.inc({ model }, (n * price[model]) / 1000);
    this.savings.inc(Math.max(0, (n * (price.large - price[model])) / 1000));
  }

  /** `call` under the model's breaker, retried with backoff; a throw counts as a failure. */
  async #withRetries<T>(model: ModelChoice, call: (h: DeploymentHandle) => Promise<T>): Promise<Attempt<T>> {
    const breaker = this.breakers[model];
    const retries = this.options.retries ?? 2;
    let error: unknown;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (!breaker.canRequest()) return { ok: false, error };
      try {
        const value = await call(this.#handle(model));
        breaker.onSuccess();
        return { ok: true, value };
      } catch (err) {
        // The request's own fault (a 4xx: bad parameters, a key, a rate limit) is the answer: the other
        // model would refuse it too (or let it around a limit), and it says nothing of the model's health.
        if (isClientError(err)) throw err;
        error = err;
        breaker.onFailure();
        this.failures.inc({ model });
        if (attempt < retries) await new Promise((r) => setTimeout(r, backoffDelayMs(attempt, this.options.backoff)));
      }
    }
    return { ok: false, error };
  }
}
