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
import type { CallOptions, DeploymentHandle, HttpRequestLike } from '@flotilla/core';
import type { DraftModel, DraftProposalWire } from './draft-model.js';
import type { TargetModel, TargetInfo, VerifyWire } from './target-model.js';
import type { RoundTiming, SpecCall, SpeculativeChunk, SpeculativeRequest } from './spec-session.js';
import type { HttpChunk } from './handler-context.js';
import { speculativeHttp, type SpeculativeBackend } from './speculative-http.js';

export type { SpeculativeChunk, SpeculativeRequest } from './spec-session.js';

export interface SpeculativePipelineOptions {
  /** Tokens the draft proposes per round. Default 4. */
  k?: number;
  /** The model name of the OpenAI API (`model` in requests, /v1/models). Default 'speculative'. */
  servedModelName?: string;
}

export class SpeculativePipeline {
  /** The proxy hands over a JSON body that does not parse, so that it is answered in OpenAI's error shape. */
  static handlesMalformedJson = true;

  private info: Promise<TargetInfo> | undefined;
  private readonly k: number;
  readonly #http: SpeculativeBackend;

  constructor(
    private readonly draft: DeploymentHandle<DraftModel>,
    private readonly target: DeploymentHandle<TargetModel>,
    options: SpeculativePipelineOptions = {},
  ) {
    this.k = options.k ?? 4;
    this.#http = {
      modelName: options.servedModelName ?? 'speculative',
      createdS: Math.floor(Date.now() / 1000),
      maxModelLen: async () => (await this.targetInfo()).maxModelLen,
      generate: (req) => this.generate(req),
    };
  }

  /** The OpenAI API over generate() (speculative-http.ts): completions and chat, whole or streamed, /v1/models, /health. */
  async *handleHttp(req: HttpRequestLike): AsyncGenerator<HttpChunk> {
    yield* speculativeHttp(req, this.#http);
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
    try {
      for (;;) {
        const room = params.maxTokens - (call.tokenIds.length - prompt.length);
        const k = Math.min(this.k, room - 1);
        const t0 = performance.now();
        const draft =
          k > 0
            ? ((await this.draft.remote('propose', [call, k], opts)) as DraftProposalWire)
            : { tokens: [], q: null, ms: 0 };
        const v = (await this.target.remote(
          'verify',
          [call, draft.tokens, draft.q, prompt.length],
          opts,
        )) as VerifyWire;
        const timing = { roundMs: performance.now() - t0, draftMs: draft.ms, verifyMs: v.ms };
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
      this.draft.remote('release', [call.requestId], opts).catch(() => {});
      this.target.remote('release', [call.requestId], opts).catch(() => {});
    }
  }

  /** The whole completion at once. */
  async complete(req: SpeculativeRequest): Promise<{
    text: string;
    tokenIds: number[];
    finishReason: string | null;
    rounds: number;
    accepted: number;
    /** The rounds' timings summed. */
    timing: RoundTiming;
  }> {
    const timing: RoundTiming = { roundMs: 0, draftMs: 0, verifyMs: 0 };
    const out = {
      text: '',
      tokenIds: [] as number[],
      finishReason: null as string | null,
      rounds: 0,
      accepted: 0,
      timing,
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
    }
    return out;
  }

  /** Output text, without the stop token's own text (as LLMEngine leaves it out). */
  private async visibleText(call: SpecCall, promptLen: number, stopped: boolean): Promise<string> {
    const ids = stopped ? call.tokenIds.slice(0, -1) : call.tokenIds;
    return (await this.target.remote('outputText', [ids, promptLen])) as string;
  }
}

/**
 * Call options that pin all rounds of one request to one replica of each side (sticky routing by
 * routingKey). A round that lands elsewhere anyway (the replica was busy) still gives the same output:
 * every call carries the request's full token ids.
 */
function sessionOptions(requestId: string): CallOptions {
  return { routingKey: requestId };
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
