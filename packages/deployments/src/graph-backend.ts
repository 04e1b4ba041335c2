/**
 * GenerationBackend over a generation graph (graph.ts), for LLMFront: prepare() checks the front's own
 * limits, then asks the graph to tokenize and check the request (tokenizePrompt); start() streams the
 * graph's deltas as the RequestOutputs the routes read, filling the request's token table from the
 * deltas' token info (the front has no tokenizer). One backend per request.
 */
import type { RequestOutput } from '@flotilla/engine';
import {
  checkParamLimits,
  checkPromptTokens,
  toApiError,
  type GenerationSpec,
  type ParamNames,
  type PreparedGeneration,
} from './generation.js';
import type { GraphClient } from './graph-client.js';
import type { GraphInfo, GraphPrepared, GraphRequest } from './graph.js';
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

export function graphBackend(
  client: GraphClient,
  info: GraphInfo,
  limits: ResolvedLimits,
  request: { requestId: string; tokenInfo: boolean },
): GenerationBackend {
  const tokens = new LearntTokens();
  let sent: GraphRequest | undefined;
  return {
    maxModelLen: info.maxModelLen,
    maxConcurrentRequests: info.maxConcurrentRequests ?? 1,
    tokens,
    async prepare(spec: GenerationSpec): Promise<PreparedGeneration> {
      checkPromptSize(spec.prompt, limits, spec.names.prompt ?? 'prompt');
      checkParamLimits(spec, limits);
      const req: GraphRequest = {
        requestId: request.requestId,
        prompt: spec.prompt,
        params: spec.params,
        names: spec.names,
        ...(spec.defaultMaxTokens !== undefined
          ? { defaultMaxTokens: Math.min(spec.defaultMaxTokens, limits.maxTokens) }
          : {}),
        ...(request.tokenInfo ? { tokenInfo: true } : {}),
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
      return outputs(client, sent, names, tokens);
    },
  };
}

async function* outputs(
  client: GraphClient,
  req: GraphRequest,
  names: ParamNames,
  tokens: LearntTokens,
): AsyncGenerator<RequestOutput> {
  const cumulative: string[] = [];
  try {
    for await (const d of client.generate(req)) {
      tokens.learn(d.tokens);
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
  }
}
