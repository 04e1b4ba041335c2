/**
 * Prompt logprobs (SamplingParams.promptLogprobs, vLLM's prompt_logprobs): the logprob of every prompt
 * token under the model given the tokens before it, with top alternatives — how a text is scored.
 *
 * A step that completes such a prompt (admitted whole, with no prefix hits: scheduler.ts) runs the
 * forward pass through `model.logits()` with every row of that prompt asked for, instead of `step()`.
 * Then every sequence of the step that samples is sampled here in TypeScript from its last row, with
 * the native sampler's semantics (spec-decode/verify-rows.ts, as speculative steps do) after its logit
 * bias, so its token is the one `step()` would have given.
 *   rows of a prompt of L tokens: row j (j < L - 1) predicts prompt token j + 1; row L - 1 samples.
 */
import { logitBiasSize, writeLogitBias } from './logit-bias.js';
import type { ModelRunner } from './model-runner.js';
import type { NativeModel } from './native/native-types.js';
import type { TokenLogprob } from './request-output.js';
import type { SchedulerOutput } from './scheduler.js';
import type { Sequence } from './sequence.js';
import type { SpecStepResult } from './spec-decode/spec-decoder.js';
import { verifyRows } from './sample/verify-rows.js';

/** Whether running `numNew` tokens of `seq` completes a prompt whose logprobs are pending. */
function completesPending(seq: Sequence, numNew: number): boolean {
  return seq.promptLogprobsPending && seq.numComputedTokens + numNew === seq.numTokens;
}

/** Whether `out` completes a prompt whose logprobs are pending. */
export function stepNeedsPromptLogprobs(out: SchedulerOutput): boolean {
  return out.seqs.some((seq, i) => completesPending(seq, out.numNewTokens[i]!));
}

export interface PromptLogprobsStep {
  /** Per sequence of `out`: its one sampled token, or [] when it does not sample this step (a prefill chunk). */
  result: SpecStepResult;
  /** seqId → the prompt's logprobs (null for the first token). */
  prompt: Map<number, Array<TokenLogprob | null>>;
}

export async function runPromptLogprobsStep(
  out: SchedulerOutput,
  model: Pick<NativeModel, 'logits' | 'config'>,
  runner: ModelRunner,
): Promise<PromptLogprobsStep> {
  const batch = runner.prepare(out);
  const S = out.seqs.length;
  const logitRows = new Int32Array(S).fill(1);
  const whole = out.seqs.map((seq, i) => completesPending(seq, out.numNewTokens[i]!));
  whole.forEach((w, i) => {
    if (w) logitRows[i] = out.numNewTokens[i]!;
  });
  const logits = await model.logits(batch, logitRows);
  const V = model.config.vocabSize;
  const result: SpecStepResult = { tokenIds: [], numDraftTokens: new Array<number>(S).fill(0), logprobs: [] };
  const prompt = new Map<number, Array<TokenLogprob | null>>();
  let r = 0;
  for (let s = 0; s < S; s++) {
    if (!batch.sampleMask[s]) {
      result.tokenIds.push([]);
      result.logprobs.push(null);
      continue;
    }
    const seq = out.seqs[s]!;
    const n = logitRows[s]!;
    const row = (j: number) => logits.subarray((r + j) * V, (r + j + 1) * V);
    if (whole[s]) {
      prompt.set(seq.seqId, promptLogprobs(seq, n, row, seq.params.promptLogprobs ?? 0));
      seq.promptLogprobsPending = false;
    }
    const last = Float32Array.from(row(n - 1)); // the bias is added to a copy: logits may be a view of native memory
    addBias(seq, last);
    const { tokens, logprobs } = verifyRows(seq, [last], null);
    result.tokenIds.push(tokens);
    result.logprobs.push(logprobs);
    r += n;
  }
  return { result, prompt };
}

function addBias(seq: Sequence, row: Float32Array): void {
  const size = logitBiasSize(seq);
  if (size === 0) return;
  const ids = new Int32Array(size);
  const values = new Float32Array(size);
  const end = writeLogitBias(seq, ids, values, 0);
  for (let i = 0; i < end; i++) row[ids[i]!]! += values[i]!;
}

/** Prompt rows 0 .. n - 2 (the prompt was computed whole from position 0) against tokens 1 .. n - 1. */
function promptLogprobs(
  seq: Sequence,
  n: number,
  row: (j: number) => Float32Array,
  numTop: number,
): Array<TokenLogprob | null> {
  const out: Array<TokenLogprob | null> = [null];
  for (let j = 0; j + 1 < n; j++) out.push(rowLogprob(row(j), seq.tokenIds[j + 1]!, numTop));
  return out;
}

/** log-softmax of one row at `tokenId`, and the numTop best (ties: lower id first) — one pass, no sort of the vocabulary. */
function rowLogprob(logits: Float32Array, tokenId: number, numTop: number): TokenLogprob {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  const best: number[] = []; // ids, best first
  for (let i = 0; i < logits.length && numTop > 0; i++) {
    const v = logits[i]!;
    if (best.length === numTop && v <= logits[best[numTop - 1]!]!) continue;
    let at = best.length;
    while (at > 0 && v > logits[best[at - 1]!]!) at--;
    best.splice(at, 0, i);
    if (best.length > numTop) best.pop();
  }
  return {
    tokenId,
    logprob: logits[tokenId]! - lse,
    top: best.map((id) => ({ tokenId: id, logprob: logits[id]! - lse })),
  };
}
