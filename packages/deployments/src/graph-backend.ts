/**
 * GenerationBackend over a generation graph (graph.ts), for LLMFront: prepare() checks the front's own
 * limits, then asks the graph to tokenize and check the request (tokenizePrompt); start() streams the
 * graph's deltas as the RequestOutputs the routes read, filling the request's token table from the
 * deltas' token info (the front has no tokenizer). One backend per request.
 */
import { performance } from 'node:perf_hooks';
import type { EngineEvent, RequestOutput } from '@flotilla/engine';
import {
  checkParamLimits,
  checkPromptTokens,
  toApiError,
  type GenerationSpec,
  type ParamNames,
  type PreparedGeneration,
} from './generation.js';
import type { GraphClient } from './graph-client.js';
import type { GraphDelta, GraphInfo, GraphPrepared, GraphRequest } from './graph.js';
import type { GenerationBackend, TokenTable } from './handler-context.js';
import type { ResolvedLimits } from './llm-server-options.js';
import { checkPromptSize } from './prompt-limits.js';

/** Token texts learnt from a graph's deltas; unknown ids read as empty, not special. */
export class LearntTokens implements TokenTable {
  readonly eosId = -1;
  readonly #tokens = new Map<number, { bytes: Uint8Array; special: boolean }>();

  learn(tokens: ReadonlyArray<{ id: number; bytes: number[]; special: boolean }> | undefined): void {
    for (const t of tokens ?? []) this.#tokens.set(t.id, { bytes: Uint8Array.from(t.bytes), special: t.special });
  }
  tokenBytes(id: number): Uint8Array {
    return this.#tokens.get(id)?.bytes ?? new Uint8Array(0);
  }
  isSpecial(id: number): boolean {
    return this.#tokens.get(id)?.special ?? false;
  }
}

/** A sample's timings as the front saw them, in the engine's event shape (LLMMetrics reads it). */
export type FinishedEvent = Extract<EngineEvent, { type: 'request-finished' }>;

export function graphBackend(
  client: GraphClient,
  info: GraphInfo,
  limits: ResolvedLimits,
  request: {
    requestId: string;
    tokenInfo: boolean;
    tgi: boolean;
    onFinished?: (e: FinishedEvent) => void;
    /** One of the graph's GraphInfo.models the request names (GraphRequest.model). */
    model?: string;
  },
): GenerationBackend {
  const tokens = new LearntTokens();
  let sent: GraphRequest | undefined;
  let arrival = 0;
  return {
    maxModelLen: info.maxModelLen,
    maxConcurrentRequests: info.maxConcurrentRequests ?? 1,
    tokens,
    async prepare(spec: GenerationSpec): Promise<PreparedGeneration> {
      arrival = performance.now();
      checkPromptSize(spec.prompt, limits, spec.names.prompt ?? 'prompt');
      checkParamLimits(spec, limits);
      // TGI asks logprobs of every request (each token's `logprob`); only top_n_tokens > 0 is the client's own ask.
      const implicit = request.tgi && spec.params.logprobs === 0;
      const { logprobs: _implicit, ...rest } = spec.params;
      const req: GraphRequest = {
        requestId: request.requestId,
        prompt: spec.prompt,
        params: implicit ? rest : spec.params,
        ...(implicit ? { optionalLogprobs: 0 } : {}),
        names: spec.names,
        ...(spec.defaultMaxTokens !== undefined
          ? { defaultMaxTokens: Math.min(spec.defaultMaxTokens, limits.maxTokens) }
          : {}),
        ...(request.tokenInfo ? { tokenInfo: true } : {}),
        ...(request.model !== undefined ? { model: request.model } : {}),
      };
      let prepared: GraphPrepared;
      try {
        prepared = await client.tokenize(req);
      } catch (err) {
        throw toApiError(err, spec.names);
      }
      checkPromptTokens(prepared.promptTokens, spec.names, limits);
      sent = { ...req, prepared };
      return {
        tokenIds: prepared.tokenIds ?? new Array<number>(prepared.promptTokens).fill(0),
        params: { maxTokens: prepared.maxTokens, n: prepared.n },
        promptText: prepared.promptText,
      };
    },
    start(_prepared: PreparedGeneration, names: ParamNames): AsyncIterable<RequestOutput> {
      if (!sent) throw new TypeError('start() needs prepare() first');
      return outputs(client, sent, names, tokens, timer(sent.requestId, arrival, request.onFinished));
    },
  };
}

async function* outputs(
  client: GraphClient,
  req: GraphRequest,
  names: ParamNames,
  tokens: LearntTokens,
  time: SampleTimer,
): AsyncGenerator<RequestOutput> {
  const cumulative: string[] = [];
  try {
    for await (const d of client.generate(req)) {
      tokens.learn(d.tokens);
      time.delta(d.index, d.tokenIds.length, d.usage, d.finished ? (d.finishReason ?? 'stop') : null);
      cumulative[d.index] = (cumulative[d.index] ?? '') + d.text;
      const out: RequestOutput = {
        requestId: req.requestId,
        index: d.index,
        text: d.text,
        tokenIds: d.tokenIds,
        cumulativeText: cumulative[d.index]!,
        finished: d.finished,
        finishReason: d.finishReason,
        stopReason: d.stopReason,
        usage: d.usage,
        ...(d.logprobs ? { logprobs: d.logprobs } : {}),
        ...(d.promptLogprobs ? { promptLogprobs: d.promptLogprobs } : {}),
      };
      yield out;
    }
  } catch (err) {
    throw toApiError(err, names);
  } finally {
    time.end();
  }
}

interface SampleTimer {
  delta(
    index: number,
    tokens: number,
    usage: GraphDelta['usage'],
    finished: FinishedEvent['finishReason'] | null,
  ): void;
  /** Samples that never finished (the client left, the graph failed) end as 'abort'. */
  end(): void;
}

/** Times each sample from the request's arrival at prepare(): first token, finish, mean gap after the first. */
function timer(requestId: string, arrival: number, onFinished: ((e: FinishedEvent) => void) | undefined): SampleTimer {
  const open = new Map<number, { first: number; usage: GraphDelta['usage'] }>();
  const done = new Set<number>();
  const finish = (index: number, reason: FinishedEvent['finishReason']) => {
    const s = open.get(index);
    if (!s || !onFinished) return;
    open.delete(index);
    done.add(index);
    const now = performance.now();
    const n = s.usage.completionTokens;
    onFinished({
      type: 'request-finished',
      requestId,
      index,
      finishReason: reason,
      promptTokens: s.usage.promptTokens,
      completionTokens: n,
      cachedPromptTokens: 0,
      queueMs: Number.NaN, // the graph's own queues are not seen from the front
      ttftMs: s.first - arrival,
      e2eMs: now - arrival,
      tpotMs: n > 1 ? (now - s.first) / (n - 1) : Number.NaN,
      numPreemptions: 0,
    });
  };
  return {
    delta(index, tokens, usage, finished) {
      if (done.has(index)) return;
      const s = open.get(index);
      if (s) s.usage = usage;
      else if (tokens > 0 || finished) open.set(index, { first: performance.now(), usage });
      if (finished) finish(index, finished);
    },
    end() {
      for (const index of [...open.keys()]) finish(index, 'abort');
    },
  };
}
