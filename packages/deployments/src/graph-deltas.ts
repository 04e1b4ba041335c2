/**
 * Helpers for a graph's side of GenerationGraph (graph.ts): a GraphRequest as the GenerationSpec the
 * engine-side code reads, an engine's RequestOutputs as GraphDeltas (with token info when asked), and
 * PreparedGeneration as GraphPrepared.
 */
import type { RequestOutput, Tokenizer } from '@flotilla/engine';
import type { GenerationSpec, PreparedGeneration } from './generation.js';
import type { GraphDelta, GraphPrepared, GraphRequest, GraphToken } from './graph.js';

/** The spec of a graph request; with `prepared` token ids, those instead of the prompt (tokenized once). */
export function graphSpec(req: GraphRequest): GenerationSpec {
  const ids = req.prepared?.tokenIds;
  const params =
    req.optionalLogprobs !== undefined && req.params.logprobs === undefined
      ? { ...req.params, logprobs: req.optionalLogprobs }
      : req.params;
  return {
    prompt: ids ? { tokenIds: ids } : req.prompt,
    params,
    names: req.names,
    ...(req.defaultMaxTokens !== undefined ? { defaultMaxTokens: req.defaultMaxTokens } : {}),
    ...(ids && req.prepared ? { promptText: req.prepared.promptText } : {}),
  };
}

export function graphPrepared(p: PreparedGeneration, state?: unknown): GraphPrepared {
  return {
    tokenIds: [...p.tokenIds],
    promptTokens: p.tokenIds.length,
    maxTokens: p.params.maxTokens ?? 0,
    n: p.params.n ?? 1,
    promptText: p.promptText,
    ...(state !== undefined ? { state } : {}),
  };
}

/** Token info for ids not in `seen` (which it extends): their bytes and whether they are special. */
export function tokenInfo(
  tok: Pick<Tokenizer, 'tokenBytes' | 'isSpecial' | 'eosId'>,
  ids: Iterable<number>,
  seen: Set<number>,
): GraphToken[] {
  const out: GraphToken[] = [];
  for (const id of ids) {
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ id, bytes: Array.from(tok.tokenBytes(id)), special: id === tok.eosId || tok.isSpecial(id) });
  }
  return out;
}

/** Every id a delta mentions: its tokens, their logprobs' alternatives, the prompt's logprobs. */
export function idsOf(d: Pick<GraphDelta, 'tokenIds' | 'logprobs' | 'promptLogprobs'>): number[] {
  const ids = [...d.tokenIds];
  for (const lp of d.logprobs ?? []) for (const t of [lp, ...lp.top]) ids.push(t.tokenId);
  for (const lp of d.promptLogprobs ?? []) if (lp) for (const t of [lp, ...lp.top]) ids.push(t.tokenId);
  return ids;
}

/**
 * An engine's outputs as deltas; `tok` adds token info (GraphRequest.tokenInfo), with the prompt's own ids
 * (`promptIds`) on a delta that carries prompt logprobs (echo shows their texts).
 */
export async function* engineDeltas(
  stream: AsyncIterable<RequestOutput>,
  tok: Pick<Tokenizer, 'tokenBytes' | 'isSpecial' | 'eosId'> | null,
  promptIds: readonly number[] = [],
): AsyncGenerator<GraphDelta> {
  const seen = new Set<number>();
  for await (const out of stream) {
    const d: GraphDelta = {
      index: out.index,
      text: out.text,
      tokenIds: out.tokenIds,
      finished: out.finished,
      finishReason: out.finishReason,
      stopReason: out.stopReason,
      usage: out.usage,
      ...(out.logprobs ? { logprobs: out.logprobs } : {}),
      ...(out.promptLogprobs ? { promptLogprobs: out.promptLogprobs } : {}),
    };
    if (tok) d.tokens = tokenInfo(tok, d.promptLogprobs ? [...promptIds, ...idsOf(d)] : idsOf(d), seen);
    yield d;
  }
}
