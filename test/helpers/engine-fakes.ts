/**
 * Plain-data fakes for unit-testing the engine's policy (scheduler, block manager) without a model:
 * sequences built from token arrays, and a fake runner that "samples" a deterministic token per
 * sequence from (seed, position), as the native contract does.
 */
import { BlockManager } from '../../packages/engine/src/block-manager.js';
import { BlockPool } from '../../packages/engine/src/block-pool.js';
import { resolveSamplingParams, type SamplingParams } from '../../packages/engine/src/sampling-params.js';
import { Scheduler, type SchedulerConfig, type SchedulerOutput } from '../../packages/engine/src/scheduler.js';
import { Sequence } from '../../packages/engine/src/sequence.js';

let nextSeqId = 0;
export const MAX_MODEL_LEN = 4096;

export function makeSeq(
  prompt: number[] | number,
  params: SamplingParams = {},
  extra: Partial<{ parent: Sequence; index: number; blockSize: number; stopTokenIds: number[]; seed: number }> = {},
): Sequence {
  const tokens = typeof prompt === 'number' ? Array.from({ length: prompt }, (_, i) => 100 + i) : prompt;
  const resolved = resolveSamplingParams(
    { maxTokens: 8, ...params },
    { maxModelLen: MAX_MODEL_LEN, vocabSize: 32000, promptLen: tokens.length },
  );
  const seqId = nextSeqId++;
  return new Sequence({
    seqId,
    requestId: `r${seqId}`,
    index: extra.index ?? 0,
    promptTokenIds: tokens,
    params: resolved,
    seed: extra.seed ?? 1234,
    stopTokenIds: extra.stopTokenIds ?? [],
    blockSize: extra.blockSize ?? 16,
    parent: extra.parent ?? null,
  });
}

export function makeScheduler(
  opts: { numBlocks: number; blockSize?: number; prefixCaching?: boolean } & Partial<SchedulerConfig>,
): Scheduler {
  const pool = new BlockPool(opts.numBlocks, opts.blockSize ?? 16);
  const bm = new BlockManager(pool, opts.prefixCaching ?? true);
  return new Scheduler({ maxModelLen: MAX_MODEL_LEN, ...opts }, bm);
}

/** The fake model's token at `position` for `seed`: depends only on those, like the native sampler. */
export function fakeToken(seed: number, position: number): number {
  return 1000 + (((Math.imul(seed ^ 0x9e3779b9, 31) + position * 7919) >>> 0) % 5000);
}

/** A step of the fake runner: samples for every sequence whose prompt completes this step. */
export function fakeStep(out: SchedulerOutput): { sampledTokenIds: Int32Array } {
  const sampled = new Int32Array(out.seqs.length).fill(-1);
  out.seqs.forEach((seq, i) => {
    const end = seq.numComputedTokens + out.numNewTokens[i]!;
    if (end === seq.numTokens) sampled[i] = fakeToken(seq.seed, end);
  });
  return { sampledTokenIds: sampled };
}

/** Runs schedule/update until nothing is left (or `maxSteps`), returning each step's output. */
export function drain(
  s: Scheduler,
  maxSteps = 10_000,
  onStep?: (out: SchedulerOutput, step: number) => void,
): SchedulerOutput[] {
  const steps: SchedulerOutput[] = [];
  while (s.hasWork) {
    if (steps.length >= maxSteps) throw new Error('scheduler did not drain');
    const out = s.schedule();
    if (out.seqs.length === 0) throw new Error('scheduler made no progress');
    s.update(out, fakeStep(out));
    steps.push(out);
    onStep?.(out, steps.length);
  }
  return steps;
}
