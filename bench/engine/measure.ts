/**
 * The measurements of one loaded model: single-sequence decode, single-sequence prefill, and batched
 * decode throughput. Each runs warm-up steps first and reports tokens per second of wall time.
 */
import type { NativeModel } from '../../packages/engine/src/native/native-types.js';
import { makeSeqs, stepBatch, type BenchSeq } from './decode-batch.js';

export const PROMPT = 8;

async function advance(model: NativeModel, seqs: BenchSeq[], n: number, blocksPerSeq: number): Promise<void> {
  await model.step(stepBatch(seqs, n, model.blockSize, blocksPerSeq, model.config.vocabSize));
  for (const s of seqs) s.computed += n;
}

export interface Rate {
  tokS: number;
  /** CPU seconds this process used per wall second: below the thread count when other processes hold the cores. */
  coresBusy: number;
}

function timer() {
  const t0 = performance.now(), c0 = process.cpuUsage();
  return (tokens: number): Rate => {
    const wall = (performance.now() - t0) / 1000, cpu = process.cpuUsage(c0);
    return { tokS: tokens / wall, coresBusy: (cpu.user + cpu.system) / 1e6 / wall };
  };
}

/** Tokens/s of `steps` decode steps over `batch` sequences after an 8-token prefill and 2 warm-up steps. */
export async function decodeRate(model: NativeModel, batch: number, steps: number): Promise<Rate> {
  const blocksPerSeq = Math.ceil((PROMPT + steps + 2) / model.blockSize);
  const seqs = makeSeqs(batch, blocksPerSeq);
  await advance(model, seqs, PROMPT, blocksPerSeq);
  for (let i = 0; i < 2; i++) await advance(model, seqs, 1, blocksPerSeq);
  const done = timer();
  for (let i = 0; i < steps; i++) await advance(model, seqs, 1, blocksPerSeq);
  return done(batch * steps);
}

/** Tokens/s of one prefill step of `tokens` tokens (best of 2). */
export async function prefillRate(model: NativeModel, tokens: number): Promise<Rate> {
  const blocksPerSeq = Math.ceil(tokens / model.blockSize);
  let best: Rate = { tokS: 0, coresBusy: 0 };
  for (let i = 0; i < 2; i++) {
    const seqs = makeSeqs(1, blocksPerSeq);
    const done = timer();
    await advance(model, seqs, tokens, blocksPerSeq);
    const r = done(tokens);
    if (r.tokS > best.tokS) best = r;
  }
  return best;
}
