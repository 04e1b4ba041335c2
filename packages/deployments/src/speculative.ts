/**
 * SpeculativePipeline: speculative decoding across two deployments, a DraftModel and a TargetModel,
 * each possibly in another process or on another machine. Per round the draft proposes k tokens for
 * the request, the target verifies them in one forward, and the kept tokens stream back at once.
 * Both sides keep the request's KV between rounds; every call carries the request id as its session
 * key so a sticky router sends all rounds to the same replica (without stickiness the output is the
 * same, only slower). Output is exactly the target's: token for token when greedy, and distributed
 * as the target's otherwise.
 *
 * ```ts
 * @deployment() class Pipeline extends SpeculativePipeline {}
 * export const app = Pipeline.bind(Draft.bind({ model: d }), Target.bind({ model: t }), { k: 4 });
 * ```
 */
import { randomInt, randomUUID } from 'node:crypto';
import type { CallOptions, DeploymentHandle, GrpcCallInfo, HttpRequestLike } from '@flotilla/core';
import type { DraftModel, DraftProposalWire } from './draft-model.js';
import { InvalidParameterError } from './errors.js';
import { FrontServer } from './front-server.js';
import { localClient } from './graph-client.js';
import type { GenerationGraph, GraphDelta, GraphInfo, GraphPrepared, GraphRequest, GraphToken } from './graph.js';
import { GRAPH_INTERNAL_METHODS } from './graph.js';
import { LLM_GRPC_SERVICE, type GrpcGenerateRequest } from './grpc/llm-grpc.js';
import type { HttpChunk } from './handler-context.js';
import { RequestGate } from './request-gate.js';
import type { TargetModel, TargetInfo, VerifyWire } from './target-model.js';
import type { RoundTiming, SpecCall, SpeculativeChunk, SpeculativeRequest } from './spec-session.js';
import { takeAhead, type Ahead } from './spec-lookahead.js';
import { SpecPipelineMetrics } from './spec-metrics.js';

export type { SpeculativeChunk, SpeculativeRequest } from './spec-session.js';

export interface SpeculativePipelineOptions {
  /** Tokens the draft proposes per round. Default 4. */
  k?: number;
  /** The model name of the OpenAI API (`model` in requests, /v1/models). Default 'speculative'. */
  servedModelName?: string;
  /**
   * Greedy requests: while the target verifies a round, the draft proposes the next one on the guess
   * that all proposals are kept (spec-lookahead.ts). Pays where the draft's actor has a core of its
   * own: the draft then runs beside the target, and the work of a failed guess is thrown away. On a
   * machine whose cores are all busy that work slows the target (bench/spec-decode --sections actors).
   * Default false.
   */
  lookahead?: boolean;
  /**
   * vLLM's 404 model_not_found for a request naming another model. Default false: as LLMServer and TGI on a
   * single-model endpoint, any name is taken as this graph's (Hugging Face's clients send the endpoint URL or
   * 'tgi'); answers carry the served name either way.
   */
  strictModelName?: boolean;
}

export class SpeculativePipeline implements GenerationGraph {
  /** The graph methods the front calls (graph.ts): through handles only, never from a proxy's client. */
  static internalMethods: readonly string[] = GRAPH_INTERNAL_METHODS;
  /** The proxy hands over a JSON body that does not parse, so that it is answered in OpenAI's error shape. */
  static handlesMalformedJson = true;
  /** llm.proto over gRPC, served through the same front code as its HTTP. */
  static grpcServices = [LLM_GRPC_SERVICE];

  private info: Promise<TargetInfo> | undefined;
  private readonly k: number;
  private readonly lookahead: boolean;
  readonly #metrics = new SpecPipelineMetrics();
  readonly #name: string;
  readonly #createdS = Math.floor(Date.now() / 1000);
  /** Its own OpenAI/TGI/llm.proto surface: LLMFront's code over this graph (no keys: put an LLMFront in front for those). */
  readonly #front: FrontServer;

  constructor(
    private readonly draft: DeploymentHandle<DraftModel>,
    private readonly target: DeploymentHandle<TargetModel>,
    options: SpeculativePipelineOptions = {},
  ) {
    this.k = options.k ?? 4;
    this.lookahead = options.lookahead ?? false;
    this.#name = options.servedModelName ?? 'speculative';
    // One graph: any model name is this one (as LLMServer), unless strictModelName (vLLM's 404).
    this.#front = new FrontServer({ [this.#name]: localClient(this) }, new RequestGate({ auditLog: 'none' }), {
      strictModelName: options.strictModelName === true,
    });
  }

  /** OpenAI (completions, chat, /v1/models), TGI and /health over this graph, by LLMFront's code (front-server.ts). */
  async *handleHttp(req: HttpRequestLike): AsyncGenerator<HttpChunk> {
    yield* this.#front.http(req);
  }

  /** llm.proto Generate. */
  grpcGenerate(request: GrpcGenerateRequest, callInfo?: GrpcCallInfo): Promise<unknown> {
    return this.#front.grpcGenerate(request, callInfo);
  }

  /** llm.proto GenerateStream. */
  async *grpcGenerateStream(request: GrpcGenerateRequest, callInfo?: GrpcCallInfo): AsyncGenerator<unknown> {
    yield* this.#front.grpcGenerateStream(request, callInfo);
  }

  /** GenerationGraph: the target's context under the pipeline's name. */
  async graphInfo(): Promise<GraphInfo> {
    const info = await this.targetInfo();
    return {
      name: this.#name,
      maxModelLen: info.maxModelLen,
      createdS: this.#createdS,
      description: `speculative decoding: a draft proposes ${this.k} tokens a round, the target verifies them`,
    };
  }

  /**
   * GenerationGraph: the target tokenizes (its chat template) and checks the parameters; what the pipeline
   * does not do (n > 1, stop strings, logprobs, logit bias, tools, guided decoding) is refused by name.
   */
  async tokenizePrompt(req: GraphRequest): Promise<GraphPrepared> {
    refuseUnsupported(req);
    const prompt = 'text' in req.prompt ? req.prompt.text : req.prompt;
    const encoded = (await this.target.remote('encodePrompt', [prompt])) as { tokenIds: number[]; text: string | null };
    const params = { ...req.params };
    if (params.maxTokens === undefined && req.defaultMaxTokens !== undefined) params.maxTokens = req.defaultMaxTokens;
    const resolved = (await this.target.remote('resolveParams', [
      params,
      encoded.tokenIds.length,
    ])) as SpecCall['params'];
    return {
      tokenIds: encoded.tokenIds,
      promptTokens: encoded.tokenIds.length,
      maxTokens: resolved.maxTokens,
      n: 1,
      promptText: encoded.text ?? '',
    };
  }

  /** GenerationGraph: generate()'s rounds as deltas (one per round), with token info from the target when asked. */
  async *generateStream(req: GraphRequest): AsyncGenerator<GraphDelta> {
    refuseUnsupported(req);
    const params = { ...req.params };
    if (params.maxTokens === undefined && req.prepared) params.maxTokens = req.prepared.maxTokens;
    const prompt = req.prepared?.tokenIds
      ? { tokenIds: req.prepared.tokenIds }
      : 'text' in req.prompt
        ? req.prompt.text
        : req.prompt;
    const seen = new Set<number>();
    let completion = 0;
    for await (const c of this.generate({ prompt, params })) {
      completion += c.tokenIds.length;
      const fresh = req.tokenInfo ? c.tokenIds.filter((id) => !seen.has(id)) : [];
      for (const id of fresh) seen.add(id);
      const tokens = fresh.length > 0 ? ((await this.target.remote('tokenInfo', [fresh])) as GraphToken[]) : undefined;
      yield {
        index: 0,
        text: c.text,
        tokenIds: c.tokenIds,
        finished: c.finished,
        finishReason: c.finishReason,
        stopReason: c.finishReason === 'stop' ? (c.tokenIds.at(-1) ?? null) : null,
        usage: { promptTokens: c.promptTokens, completionTokens: completion },
        ...(tokens ? { tokens } : {}),
      };
    }
  }

  /** The target's info, asked once (again after a failure). */
  private targetInfo(): Promise<TargetInfo> {
    this.info ??= this.target.remote('info', []) as Promise<TargetInfo>;
    this.info.catch(() => {
      this.info = undefined;
    });
    return this.info;
  }

  /** Streams the completion of `req.prompt`, one chunk per round. */
  async *generate(req: SpeculativeRequest): AsyncGenerator<SpeculativeChunk> {
    const info = await this.targetInfo();
    const encoded = (await this.target.remote('encodePrompt', [req.prompt])) as { tokenIds: number[] };
    const prompt = encoded.tokenIds;
    const params = (await this.target.remote('resolveParams', [req.params ?? {}, prompt.length])) as SpecCall['params'];
    const stopIds = new Set([...params.stopTokenIds, ...(params.ignoreEos ? [] : info.stopTokenIds)]);
    const call: SpecCall = {
      requestId: randomUUID(),
      tokenIds: [...prompt],
      params,
      seed: params.seed ?? randomInt(0, 2 ** 32 - 1),
    };
    const opts = sessionOptions(call.requestId);
    let emitted = '';
    let ahead: Ahead | null = null;
    try {
      for (;;) {
        const room = params.maxTokens - (call.tokenIds.length - prompt.length);
        const k = Math.min(this.k, room - 1);
        const t0 = performance.now();
        const early: DraftProposalWire | null = k > 0 && ahead ? await takeAhead(ahead, call.tokenIds, k) : null;
        const draftMs = early ? performance.now() - t0 : 0;
        ahead = null;
        const draft: DraftProposalWire =
          early ??
          (k > 0
            ? ((await this.draft.remote('propose', [call, k], opts)) as DraftProposalWire)
            : { tokens: [], q: null, ms: 0 });
        const verifying = this.target.remote('verify', [call, draft.tokens, draft.q, prompt.length], opts);
        // The next round needs room for its proposals after this round's k + 1 tokens.
        if (this.lookahead && params.temperature === 0 && k > 0 && draft.tokens.length === k && room - (k + 1) > 1) {
          const base: number[] = [...call.tokenIds, ...draft.tokens];
          ahead = {
            base,
            reply: this.draft.remote(
              'propose',
              [{ ...call, tokenIds: base }, k + 1],
              opts,
            ) as Promise<DraftProposalWire>,
          };
          ahead.reply.catch(() => {});
        }
        const v = (await verifying) as VerifyWire;
        const timing: RoundTiming = {
          roundMs: performance.now() - t0,
          draftMs: early ? draftMs : draft.ms,
          verifyMs: v.ms,
          ahead: early !== null,
        };
        this.#metrics.round(timing);
        const { kept, reason } = keepUntilStop(v.tokens, call.tokenIds.length - prompt.length, params, stopIds);
        call.tokenIds.push(...kept);
        const text =
          kept.length === v.tokens.length && reason !== 'stop'
            ? v.text
            : await this.visibleText(call, prompt.length, reason === 'stop');
        yield {
          tokenIds: kept,
          text: text.slice(emitted.length),
          accepted: Math.min(v.numAccepted, kept.length),
          finished: reason !== null,
          finishReason: reason,
          promptTokens: prompt.length,
          timing,
        };
        emitted = text;
        if (reason !== null) return;
      }
    } finally {
      // After a call made ahead has run: released first, the draft would open the session again for it.
      const settled = ahead ? (ahead as Ahead).reply.then(noop, noop) : Promise.resolve();
      const release = releaseOptions(call.requestId);
      settled.then(() => this.draft.remote('release', [call.requestId], release)).catch(noop);
      this.target.remote('release', [call.requestId], release).catch(noop);
    }
  }

  /** Replica metrics for the proxy's /metrics (prom-client JSON): rounds and their time by part (spec-metrics.ts). */
  async collectMetrics(): Promise<unknown[]> {
    return this.#metrics.registry.getMetricsAsJSON();
  }

  /** The whole completion at once. */
  async complete(req: SpeculativeRequest): Promise<{
    text: string;
    tokenIds: number[];
    finishReason: string | null;
    rounds: number;
    accepted: number;
    /** The rounds' timings summed. */
    timing: Omit<RoundTiming, 'ahead'>;
    /** Rounds whose proposals were made ahead. */
    aheadRounds: number;
  }> {
    const timing = { roundMs: 0, draftMs: 0, verifyMs: 0 };
    const out = {
      text: '',
      tokenIds: [] as number[],
      finishReason: null as string | null,
      rounds: 0,
      accepted: 0,
      timing,
      aheadRounds: 0,
    };
    for await (const c of this.generate(req)) {
      out.text += c.text;
      out.tokenIds.push(...c.tokenIds);
      out.finishReason = c.finishReason;
      out.rounds++;
      out.accepted += c.accepted;
      timing.roundMs += c.timing.roundMs;
      timing.draftMs += c.timing.draftMs;
      timing.verifyMs += c.timing.verifyMs;
      if (c.timing.ahead) out.aheadRounds++;
    }
    return out;
  }

  /** Output text, without the stop token's own text (as LLMEngine leaves it out). */
  private async visibleText(call: SpecCall, promptLen: number, stopped: boolean): Promise<string> {
    const ids = stopped ? call.tokenIds.slice(0, -1) : call.tokenIds;
    return (await this.target.remote('outputText', [ids, promptLen])) as string;
  }
}

const noop = () => {};

/** Refuses, by the API's name for it, what the pipeline does not implement: never a silent difference. */
function refuseUnsupported(req: GraphRequest): void {
  const p = req.params;
  const name = (key: keyof GraphRequest['names'], dflt: string) => req.names[key] ?? dflt;
  const no = (field: string) => new InvalidParameterError(field, 'is not supported by the speculative pipeline');
  if ((p.n ?? 1) !== 1) throw new InvalidParameterError(name('n', 'n'), 'must be 1 on the speculative pipeline');
  if (p.stop !== undefined && (typeof p.stop === 'string' || p.stop.length > 0)) throw no(name('stop', 'stop'));
  if (p.logprobs !== undefined) throw no(name('logprobs', 'logprobs'));
  if (p.promptLogprobs !== undefined) throw no(name('promptLogprobs', 'prompt_logprobs'));
  if (p.logitBias !== undefined) throw no(name('logitBias', 'logit_bias'));
  if (p.guided !== undefined) throw no(name('guided', 'response_format'));
  if ('tools' in req.prompt && req.prompt.tools?.length) throw no('tools');
}

/**
 * Call options that pin all rounds of one request to one replica of each side (sticky routing by
 * routingKey). A round that lands elsewhere anyway (the replica was busy) still gives the same output:
 * every call carries the request's full token ids.
 */
function sessionOptions(requestId: string): CallOptions {
  return { routingKey: requestId };
}

/**
 * Options of the release calls: to the session's replicas, but not part of the request. Calls made in
 * a replica carry its request's id and cancellation, and a request ends early because its caller
 * cancelled it (a client that went away): its release calls would then be cancelled before they left,
 * and both sides would keep the session's KV. Their own signal (never aborted, with a timeout) and id
 * detach them.
 */
function releaseOptions(requestId: string): CallOptions {
  return {
    routingKey: requestId,
    requestId: `${requestId}:release`,
    signal: new AbortController().signal,
    timeoutMs: 30_000,
  };
}

/** Keeps tokens up to and including the first that stops (after minTokens), or up to maxTokens. */
export function keepUntilStop(
  tokens: readonly number[],
  numOutput: number,
  params: { maxTokens: number; minTokens: number },
  stopIds: ReadonlySet<number>,
): { kept: number[]; reason: 'stop' | 'length' | null } {
  const kept: number[] = [];
  for (const t of tokens) {
    kept.push(t);
    const n = numOutput + kept.length;
    if (n >= params.minTokens && stopIds.has(t)) return { kept, reason: 'stop' };
    if (n >= params.maxTokens) return { kept, reason: 'length' };
  }
  return { kept, reason: null };
}
