/**
 * The measurements of one loaded model: decode throughput at several batch sizes (single sequence
 * included) in interleaved rounds, and single-sequence prefill. Each runs warm-up steps first and
 * reports tokens per second of wall time.
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
  const t0 = performance.now(),
    c0 = process.cpuUsage();
  return (tokens: number): Rate => {
    const wall = (performance.now() - t0) / 1000,
      cpu = process.cpuUsage(c0);
    return { tokS: tokens / wall, coresBusy: (cpu.user + cpu.system) / 1e6 / wall };
  };
}

export interface DecodePlan {
  batch: number;
  /** Decode steps of this batch size in each round. */
  stepsPerRound: number;
}

/** KV blocks that interleavedDecode needs for `plans` over `rounds` rounds. */
export function interleavedBlocks(plans: DecodePlan[], rounds: number, blockSize: number): number {
  return plans.reduce((n, p) => n + p.batch * Math.ceil((PROMPT + 2 + rounds * p.stepsPerRound) / blockSize), 0);
}

/**
 * Decode tokens/s of several batch sizes measured in interleaved rounds: every round runs each plan's
 * steps in turn, so load from other processes, which changes from second to second on a shared
 * machine, weighs on every batch size alike and their ratios stay meaningful. `eachRound` runs
 * (untimed) at the start of every round, e.g. to measure the bandwidth again.
 */
export async function interleavedDecode(
  model: NativeModel,
  plans: DecodePlan[],
  rounds: number,
  eachRound: () => void = () => {},
): Promise<Map<number, Rate>> {
  let first = 0;
  const runs = plans.map((p) => {
    const blocksPerSeq = Math.ceil((PROMPT + 2 + rounds * p.stepsPerRound) / model.blockSize);
    const seqs = makeSeqs(p.batch, blocksPerSeq, first);
    first += p.batch * blocksPerSeq;
    return { plan: p, seqs, blocksPerSeq, wall: 0, cpu: 0 };
  });
  for (const r of runs) {
    await advance(model, r.seqs, PROMPT, r.blocksPerSeq);
    for (let i = 0; i < 2; i++) await advance(model, r.seqs, 1, r.blocksPerSeq);
  }
  for (let round = 0; round < rounds; round++) {
    eachRound();
    for (const r of runs) {
      const t0 = performance.now(),
        c0 = process.cpuUsage();
      for (let i = 0; i < r.plan.stepsPerRound; i++) await advance(model, r.seqs, 1, r.blocksPerSeq);
      const cpu = process.cpuUsage(c0);
      r.wall += (performance.now() - t0) / 1000;
      r.cpu += (cpu.user + cpu.system) / 1e6;
    }
  }
  return new Map(
    runs.map((r) => [
      r.plan.batch,
      { tokS: (r.plan.batch * r.plan.stepsPerRound * rounds) / r.wall, coresBusy: r.cpu / r.wall },
    ]),
  );
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
