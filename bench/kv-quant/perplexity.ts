/**
 * Perplexity of a model on texts, with the KV pool in a given element type: each text is one
 * sequence, prefilled in chunks of `chunk` tokens (so later chunks read earlier ones back from the
 * pool, as a served prompt or a decode does), and scored by the logits of every position.
 */
import type { NativeModel } from '../../packages/engine/src/native/native-types.js';
import { type BenchSeq, stepBatch } from './batch.js';

export interface Perplexity {
  ppl: number;
  tokens: number;
}

function logProbOf(row: Float32Array, id: number): number {
  let m = -Infinity;
  for (const v of row) m = Math.max(m, v);
  let s = 0;
  for (const v of row) s += Math.exp(v - m);
  return row[id]! - m - Math.log(s);
}

export async function perplexity(model: NativeModel, texts: number[][], chunk: number): Promise<Perplexity> {
  const V = model.config.vocabSize;
  const bs = model.blockSize;
  let nll = 0;
  let n = 0;
  for (const tokens of texts) {
    const blocks = Array.from({ length: Math.ceil(tokens.length / bs) }, (_, i) => i);
    const seq: BenchSeq = { tokens, computed: 0, blocks };
    while (seq.computed < tokens.length - 1) {
      const take = Math.min(chunk, tokens.length - 1 - seq.computed);
      const logits = await model.logits(stepBatch(bs, [{ seq, n: take }]), Int32Array.of(take)); // all `take` rows
      for (let i = 0; i < take; i++) {
        nll -= logProbOf(logits.subarray(i * V, (i + 1) * V), tokens[seq.computed + i + 1]!);
        n++;
      }
      seq.computed += take;
    }
  }
  return { ppl: Math.exp(nll / n), tokens: n };
}
