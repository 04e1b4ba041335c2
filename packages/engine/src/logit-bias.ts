/**
 * What the native step adds to a sequence's logits before sampling (NativeStepBatch's biasTokens /
 * biasValues / biasOffsets): the request's logitBias, and, while fewer than minTokens tokens are out,
 * -inf on the sequence's stop tokens (EOS and the model's stop ids unless ignoreEos, and stopTokenIds),
 * so that none of them can be sampled — vLLM's min_tokens. Without the ban a stop token sampled early
 * would only be ignored: it would stay in the output and the model would go on after it.
 */
import type { Sequence } from './sequence.js';

/** Whether the stop tokens are banned in the step that samples the sequence's next token. */
function bansStopTokens(seq: Sequence): boolean {
  return seq.numOutputTokens < seq.params.minTokens && seq.stopTokenIds.length > 0;
}

/** Whether `seq` has any bias in its next step. */
export function hasLogitBias(seq: Sequence): boolean {
  return seq.params.logitBias.length > 0 || bansStopTokens(seq);
}

/** Most entries writeLogitBias may write for `seq`. */
export function logitBiasSize(seq: Sequence): number {
  return seq.params.logitBias.length + (bansStopTokens(seq) ? seq.stopTokenIds.length : 0);
}

/** Writes `seq`'s (id, bias) entries from index p, each id once (a ban replaces a bias); returns the end. */
export function writeLogitBias(seq: Sequence, ids: Int32Array, values: Float32Array, p: number): number {
  const start = p;
  const ban = bansStopTokens(seq);
  for (const [id, bias] of seq.params.logitBias) {
    if (ban && seq.stopTokenIds.includes(id)) continue;
    ids[p] = id;
    values[p++] = bias;
  }
  if (ban) {
    for (const id of seq.stopTokenIds) {
      if (ids.subarray(start, p).includes(id)) continue; // stopTokenIds may repeat an id
      ids[p] = id;
      values[p++] = -Infinity;
    }
  }
  return p;
}
