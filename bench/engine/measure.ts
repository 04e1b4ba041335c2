/**
 * The measurements of one loaded model: single-sequence decode, single-sequence prefill, and batched
 * decode throughput. Each runs warm-up steps first and reports tokens per second of wall time.
 */
import type { NativeModel } from '../../packages/engine/src/native/native-types.js';
import { makeSeqs, stepBatch, type BenchSeq } from './decode-batch.js';

export const PROMPT = 8;

export interface Shape {
  decodeSteps: number;
  prefillTokens: number;
  batches: number[];
}

async function advance(model: NativeModel, seqs: BenchSeq[], n: number, blocksPerSeq: number): Promise<void> {
  await model.step(stepBatch(seqs, n, model.blockSize, blocksPerSeq, model.config.vocabSize));
  for (const s of seqs) s.computed += n;
}

/** Tokens/s of `steps` decode steps over `batch` sequences after an 8-token prefill and 2 warm-up steps. */
export async function decodeRate(model: NativeModel, batch: number, steps: number): Promise<number> {
  const blocksPerSeq = Math.ceil((PROMPT + steps + 2) / model.blockSize);
  const seqs = makeSeqs(batch, blocksPerSeq);
  await advance(model, seqs, PROMPT, blocksPerSeq);
  for (let i = 0; i < 2; i++) await advance(model, seqs, 1, blocksPerSeq);
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await advance(model, seqs, 1, blocksPerSeq);
  return (batch * steps) / ((performance.now() - t0) / 1000);
}

/** Tokens/s of one prefill step of `tokens` tokens (best of 2). */
export async function prefillRate(model: NativeModel, tokens: number): Promise<number> {
  const blocksPerSeq = Math.ceil(tokens / model.blockSize);
  let best = 0;
  for (let i = 0; i < 2; i++) {
    const seqs = makeSeqs(1, blocksPerSeq);
    const t0 = performance.now();
    await advance(model, seqs, tokens, blocksPerSeq);
    best = Math.max(best, tokens / ((performance.now() - t0) / 1000));
  }
  return best;
}
