/**
 * ResponseCache: an exact-match cache in front of any LLM deployment. The key is the request's model,
 * prompt (or messages, or token ids) and every sampling parameter, canonically serialised; only
 * deterministic requests (temperature 0, or a seed) are cached by default, so a sampled request is
 * never answered from the cache. Entries live in an LRU bounded by count and bytes, with a TTL; hit,
 * miss and bypass counts go to the replica's prom-client registry (collectMetrics(), as LLMServer).
 *
 * It serves the model's own APIs in front of it: llm.proto over gRPC and handles (`grpcGenerate` cached,
 * `grpcGenerateStream` passed through) and HTTP (`handleHttp`): a whole (not streamed) deterministic
 * OpenAI completion or chat completion that the model answered 200 is stored and answered again
 * byte-identically, with `x-flotilla-cache: hit|miss`; every other request (streams, sampled requests,
 * TGI, /v1/models, errors) passes through to the model's handleHttp. The key includes a digest of the
 * caller's credentials (HTTP `authorization`, gRPC `authorization` metadata or `api_key`), so an entry is
 * never served to a caller the model would have refused.
 *
 * It is also a GenerationGraph (graph.ts) over a graph below it, for LLMFront: a deterministic request's
 * deltas are stored (without logprobs) once every sample finished and replayed on the same request; a
 * request asking for logprobs that the cache would answer is refused with 400 naming `logprobs`.
 *
 * ```ts
 * @deployment() class Cache extends ResponseCache {}
 * export const app = Cache.bind(Llm.bind({ model }), { ttlMs: 60_000 });
 * ```
 */
import { createHash } from 'node:crypto';
import type { DeploymentHandle, GrpcCallInfo, HttpRequestLike, HttpResponseLike } from '@flotilla/core';
import { Counter, Gauge, Registry } from 'prom-client';
import { InvalidParameterError } from './errors.js';
import { LruTtlCache, type LruTtlOptions } from './lru-ttl-cache.js';
import {
  GRAPH_METHODS,
  type GenerationGraph,
  type GraphDelta,
  type GraphInfo,
  type GraphPrepared,
  type GraphRequest,
} from './graph.js';
import { GRAPH_INTERNAL_METHODS, generationOnly } from './graph.js';
import { LLM_GRPC_SERVICE } from './grpc/llm-grpc.js';

export { LruTtlCache, type LruTtlOptions } from './lru-ttl-cache.js';
import type { HttpChunk } from './handler-context.js';

/** The request fields that make up the key; every other field (api_key, user, …) is left out. */
const KEY_FIELDS = [
  'model',
  'prompt',
  'messages',
  'prompt_token_ids',
  'max_tokens',
  'temperature',
  'top_p',
  'top_k',
  'min_p',
  'n',
  'stop',
  'seed',
  'logprobs',
  'presence_penalty',
  'frequency_penalty',
  'repetition_penalty',
  'ignore_eos',
] as const;

/** Canonical key of a generate request (fields in a fixed order, absent ones omitted). */
export function cacheKey(req: Record<string, unknown>): string {
  const parts: unknown[] = [];
  for (const f of KEY_FIELDS) parts.push(req[f] === undefined ? null : req[f]);
  return JSON.stringify(parts);
}

/** Deterministic: greedy (temperature 0) or seeded. The gRPC/OpenAI default temperature is 1, so absent means sampled. */
export function isDeterministic(req: Record<string, unknown>): boolean {
  return req.temperature === 0 || (typeof req.seed === 'number' && Number.isInteger(req.seed));
}

/** A digest of the caller's credentials, part of every key ('' for none). */
export function credentialScope(secret: string | undefined): string {
  return secret ? createHash('sha256').update(secret).digest('hex').slice(0, 32) : '';
}

/** JSON with object keys sorted at every level: equal bodies give equal text whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

/** The OpenAI routes whose whole replies may be cached. */
const CACHED_PATHS = new Set(['/v1/completions', '/v1/chat/completions']);

export interface ResponseCacheOptions extends Omit<LruTtlOptions, 'now'> {
  /** Downstream method called with the request. Default 'grpcGenerate' (LLMServer's). */
  method?: string;
  /** Downstream streaming method for grpcGenerateStream. Default 'grpcGenerateStream'. */
  streamMethod?: string;
  /** Cache seeded requests too (they are reproducible on the same engine). Default true. */
  cacheSeeded?: boolean;
}

export class ResponseCache implements GenerationGraph {
  /** The graph methods the front calls (graph.ts): through handles only, never from a proxy's client. */
  static internalMethods: readonly string[] = GRAPH_INTERNAL_METHODS;
  /** Serves llm.proto itself (`serve run` binds it to the declarer nearest the ingress), so gRPC calls pass the cache. */
  static grpcServices = [LLM_GRPC_SERVICE];
  /** Malformed JSON is forwarded as it came, so the model answers it in its own API's shape. */
  static handlesMalformedJson = true;

  private readonly cache: LruTtlCache<string>;
  private readonly streamMethod: string;
  private readonly method: string;
  private readonly cacheSeeded: boolean;
  private readonly registry = new Registry();
  private readonly lookups: Counter<'result'>;

  constructor(
    private readonly llm: DeploymentHandle,
    options: ResponseCacheOptions = {},
  ) {
    this.cache = new LruTtlCache(options);
    this.method = options.method ?? 'grpcGenerate';
    this.streamMethod = options.streamMethod ?? 'grpcGenerateStream';
    this.cacheSeeded = options.cacheSeeded ?? true;
    const registers = [this.registry];
    this.lookups = new Counter({
      name: 'flotilla_response_cache_lookups_total',
      help: 'Cache lookups by result: hit, miss, or bypass (not cacheable).',
      labelNames: ['result'],
      registers,
    });
    const cache = this.cache;
    // Registered in this replica's registry; read on each scrape.
    new Gauge({
      name: 'flotilla_response_cache_entries',
      help: 'Responses held.',
      registers,
      collect() {
        this.set(cache.size);
      },
    });
  }

  /** The downstream response, from the cache when an identical deterministic request was answered before. */
  async generate(req: Record<string, unknown>, callInfo?: GrpcCallInfo): Promise<unknown> {
    const args = [req, ...(callInfo ? [callInfo] : [])];
    if (!this.#cacheable(req)) {
      this.lookups.inc({ result: 'bypass' });
      return this.llm.remote(this.method, args);
    }
    const secret = callInfo?.metadata.authorization ?? (typeof req.api_key === 'string' ? req.api_key : undefined);
    const key = `grpc ${credentialScope(secret)} ${cacheKey(req)}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      this.lookups.inc({ result: 'hit' });
      // Stored serialised: a hit is byte-identical to the first answer and callers cannot mutate the entry.
      return JSON.parse(hit);
    }
    this.lookups.inc({ result: 'miss' });
    const res = await this.llm.remote(this.method, args);
    const text = JSON.stringify(res);
    this.cache.set(key, text, text.length * 2);
    return res;
  }

  /** llm.proto Generate (gRPC): generate(), with the call's metadata passed on. */
  grpcGenerate(req: Record<string, unknown>, callInfo?: GrpcCallInfo): Promise<unknown> {
    return this.generate(req, callInfo);
  }

  /** llm.proto GenerateStream: passed through (streams are not cached). */
  async *grpcGenerateStream(req: Record<string, unknown>, callInfo?: GrpcCallInfo): AsyncGenerator<unknown> {
    this.lookups.inc({ result: 'bypass' });
    yield* this.llm.remoteStream(this.streamMethod, [req, ...(callInfo ? [callInfo] : [])]) as AsyncIterable<unknown>;
  }

  /** The model's HTTP API, whole deterministic OpenAI replies from the cache (see the top of this file). */
  async *handleHttp(req: HttpRequestLike): AsyncGenerator<HttpChunk> {
    const path = req.path.replace(/\/+$/, '') || '/';
    const body = req.body as Record<string, unknown> | undefined;
    const eligible =
      req.method === 'POST' &&
      CACHED_PATHS.has(path) &&
      req.bodyError === undefined &&
      req.authError === undefined &&
      typeof body === 'object' &&
      body !== null &&
      !Array.isArray(body) &&
      body.stream !== true;
    if (!eligible) {
      yield* this.#forward(req);
      return;
    }
    if (!this.#cacheable(body)) {
      this.lookups.inc({ result: 'bypass' });
      yield* this.#forward(req);
      return;
    }
    const key = `http ${path} ${credentialScope(req.headers.authorization)} ${canonicalJson(body)}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      this.lookups.inc({ result: 'hit' });
      const stored = JSON.parse(hit) as HttpResponseLike;
      yield { ...stored, headers: { ...stored.headers, 'x-flotilla-cache': 'hit' } };
      return;
    }
    this.lookups.inc({ result: 'miss' });
    const chunks: HttpChunk[] = [];
    for await (const chunk of this.#forward(req)) {
      chunks.push(chunk);
      // A whole reply is one head with its body; anything else (a stream after all) is passed on as it comes.
      if (chunks.length > 1 || typeof chunk === 'string') {
        for (const c of chunks.splice(0)) yield c;
      }
    }
    const only = chunks[0];
    if (chunks.length !== 1 || only === undefined || typeof only === 'string') return;
    if (only.status === 200 && only.body !== undefined) {
      // Only what a client receives is kept: status, body and the reply's own headers (not this request's id).
      const { status, body: replyBody } = only;
      const text = JSON.stringify({ status, body: replyBody });
      this.cache.set(key, text, text.length * 2);
    }
    yield { ...only, headers: { ...only.headers, 'x-flotilla-cache': 'miss' } };
  }

  /** GenerationGraph: the model's info (behind LLMFront, the cache is the model), for generation only. */
  async graphInfo(): Promise<GraphInfo> {
    return generationOnly((await this.llm.remote(GRAPH_METHODS.info, [])) as GraphInfo);
  }

  /** GenerationGraph: the model's tokenizePrompt; logprobs asked of a request the cache would answer is refused (400). */
  async tokenizePrompt(req: GraphRequest): Promise<GraphPrepared> {
    const key = this.#graphKey(req);
    if (key !== undefined && this.cache.get(key) !== undefined) refuseLogprobs(req);
    return this.llm.remote(GRAPH_METHODS.tokenize, [req]) as Promise<GraphPrepared>;
  }

  /**
   * GenerationGraph: a deterministic request's deltas from the cache when the same request (prompt and every
   * parameter but logprobs) was answered to the end before; else the model's, stored without logprobs once
   * every sample finished. A cached answer has no logprobs: asking for them on a hit is a 400 naming the field.
   */
  async *generateStream(req: GraphRequest): AsyncGenerator<GraphDelta> {
    const key = this.#graphKey(req);
    if (key === undefined) {
      this.lookups.inc({ result: 'bypass' });
      yield* this.llm.remoteStream(GRAPH_METHODS.generate, [req]) as AsyncIterable<GraphDelta>;
      return;
    }
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      refuseLogprobs(req);
      this.lookups.inc({ result: 'hit' });
      for (const d of JSON.parse(hit) as GraphDelta[]) yield d;
      return;
    }
    this.lookups.inc({ result: 'miss' });
    const kept: GraphDelta[] = [];
    let finished = 0;
    // Token info always, so that an entry can answer a later request that needs token texts (TGI).
    const sent = { ...req, tokenInfo: true };
    for await (const d of this.llm.remoteStream(GRAPH_METHODS.generate, [sent]) as AsyncIterable<GraphDelta>) {
      const { logprobs: _l, promptLogprobs: _p, ...plain } = d;
      kept.push(plain);
      if (d.finished && d.finishReason !== 'abort') finished++;
      yield d;
    }
    if (finished === (req.prepared?.n ?? req.params.n ?? 1)) {
      const text = JSON.stringify(kept);
      this.cache.set(key, text, text.length * 2);
    }
  }

  /** The cache key of a graph request, or undefined when it is not cacheable (sampled). */
  #graphKey(req: GraphRequest): string | undefined {
    const p = req.params;
    const deterministic =
      p.temperature === 0 || (this.cacheSeeded && typeof p.seed === 'number' && Number.isInteger(p.seed));
    if (!deterministic) return undefined;
    // The prompt as sent (not the model's token ids, absent from tokenizePrompt's request), the parameters but logprobs.
    const { logprobs: _l, promptLogprobs: _p, ...params } = p;
    return `graph ${canonicalJson({ prompt: req.prompt, params, defaultMaxTokens: req.defaultMaxTokens ?? null })}`;
  }

  /** Greedy, or seeded when cacheSeeded. */
  #cacheable(req: Record<string, unknown>): boolean {
    return req.temperature === 0 || (this.cacheSeeded && isDeterministic(req));
  }

  #forward(req: HttpRequestLike): AsyncIterable<HttpChunk> {
    return this.llm.stream.handleHttp!(req) as AsyncIterable<HttpChunk>;
  }

  /** Hit/miss/bypass counts and entries (for tests and dashboards). */
  async cacheStats(): Promise<{ hits: number; misses: number; bypasses: number; entries: number }> {
    const v = (await this.lookups.get()).values;
    const of = (r: string) => v.find((x) => x.labels.result === r)?.value ?? 0;
    return { hits: of('hit'), misses: of('miss'), bypasses: of('bypass'), entries: this.cache.size };
  }

  /** Replica metrics for the proxy's /metrics (prom-client JSON), as LLMServer.collectMetrics(). */
  async collectMetrics(): Promise<unknown[]> {
    return this.registry.getMetricsAsJSON();
  }
}

/** A cached answer keeps no logprobs: a request asking for them is told so by the field's name (400). */
function refuseLogprobs(req: GraphRequest): void {
  for (const key of ['logprobs', 'promptLogprobs'] as const) {
    if (req.params[key] === undefined) continue;
    // Chat's switch is `logprobs: true` (its engine name, top_logprobs, only sizes the alternatives).
    const given = req.names[key] ?? (key === 'logprobs' ? 'logprobs' : 'prompt_logprobs');
    const name = given === 'top_logprobs' ? 'logprobs' : given;
    throw new InvalidParameterError(
      name,
      'cannot be answered: this request is answered from the response cache, which keeps no logprobs (ask without them, or sampled with temperature > 0 and no seed)',
    );
  }
}
