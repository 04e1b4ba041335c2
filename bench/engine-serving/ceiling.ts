/**
 * The most any batching policy could get out of this engine on this machine, measured in the same run
 * as the modes it bounds: the best step rates with every sequence at a context of a few tokens, so
 * that decode attention over long contexts (which continuous batching pays and this does not) costs
 * nothing.
 *
 *   decode-shaped: `decodeSeqs` sequences with a one-token prompt, each step one token per sequence
 *                  and a logits row for each (the shape of a decode step of a full batch);
 *   prefill-shaped: 8 prompts of 64 tokens, submitted together (one 512-token step, or a few if the
 *                  engine loop starts on the first before the rest arrive), one logits row per prompt.
 * Each is the best tokens/s of its steps over three rounds.
 *
 * A workload of P prompt and O output tokens then takes at least O / decode + P / prefill seconds of
 * steps, so its output tokens/s is at most O / that. Continuous batching of that workload cannot beat
 * this (its steps also read every sequence's K/V and its batch drains at the end); when the ceiling
 * itself is below a target ratio, no scheduler reaches that ratio on this machine.
 */
import type { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import { randomTokens, rng } from './workload.js';

export interface Ceiling {
  decodeSeqs: number;
  /** Output tokens/s of the best decode-shaped step. */
  decodeTokPerS: number;
  prefillTokens: number;
  /** Prompt tokens/s of the best prefill-shaped step. */
  prefillTokPerS: number;
}

const ROUNDS = 3;

/** Runs `prompts` to `maxTokens` greedy tokens at once; returns the best tokens/s of a step that `shaped` accepts. */
async function bestRate(
  engine: LLMEngine,
  prompts: number[][],
  maxTokens: number,
  shaped: (numSeqs: number, numTokens: number) => boolean,
): Promise<number> {
  let best = 0;
  const off = engine.onEvent((e) => {
    if (e.type === 'step' && shaped(e.numSeqs, e.numTokens)) best = Math.max(best, (e.numTokens * 1000) / e.durationMs);
  });
  try {
    await Promise.all(
      prompts.map(async (p) => {
        for await (const _ of engine.generate({ tokenIds: p }, { temperature: 0, maxTokens, ignoreEos: true }));
      }),
    );
  } finally {
    off();
  }
  return best;
}

/** `engine` should have prefix caching off (each round's prompts are new anyway) and room for `decodeSeqs` sequences. */
export async function measureCeiling(
  engine: LLMEngine,
  decodeSeqs: number,
  vocabSize: number,
  seed: number,
): Promise<Ceiling> {
  const rand = rng(seed);
  let decode = 0;
  let prefill = 0;
  const prefillPrompts = 8;
  const prefillLen = 64;
  for (let round = 0; round < ROUNDS; round++) {
    const one = Array.from({ length: decodeSeqs }, () => randomTokens(1, vocabSize, rand));
    decode = Math.max(decode, await bestRate(engine, one, 4, (seqs, tokens) => tokens === seqs));
    const long = Array.from({ length: prefillPrompts }, () => randomTokens(prefillLen, vocabSize, rand));
    prefill = Math.max(prefill, await bestRate(engine, long, 1, (seqs, tokens) => tokens >= prefillLen * seqs));
  }
  return { decodeSeqs, decodeTokPerS: decode, prefillTokens: prefillPrompts * prefillLen, prefillTokPerS: prefill };
}

/** Output tokens/s at most, for a workload of `promptTokens` and `outputTokens` in all. */
export function ceilingOutputTokPerS(c: Ceiling, promptTokens: number, outputTokens: number): number {
  const seconds = outputTokens / c.decodeTokPerS + promptTokens / c.prefillTokPerS;
  return outputTokens / seconds;
}
