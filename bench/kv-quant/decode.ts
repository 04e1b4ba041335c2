/**
 * Decode throughput at a fixed batch, pools side by side: every model gets the same `batch` prompts
 * (prefilled, not timed), then the models take turns step by step (the order flipping each step)
 * for `steps` greedy decode steps of one token per sequence. Each step is timed in wall time and in
 * this process's CPU time (all threads): on a shared machine the turn-taking puts load swings on
 * every model alike, and CPU time leaves out the time the threads waited for a core.
 */
import type { NativeModel } from '../../packages/engine/src/native/native-types.js';
import { type BenchSeq, stepBatch } from './batch.js';

export interface DecodeResult {
  tokPerS: number;
  tokPerCpuS: number;
  /** Per-step wall times (ms), to show the spread. */
  stepMs: number[];
  /** The greedy tokens of the first sequence after its prompt. */
  firstSeq: number[];
}

async function prefill(
  model: NativeModel,
  prompts: number[][],
  steps: number,
  maxBatchTokens: number,
): Promise<BenchSeq[]> {
  const bs = model.blockSize;
  const perSeq = Math.ceil((prompts[0]!.length + steps + 1) / bs);
  if (perSeq * prompts.length > model.numBlocks)
    throw new Error(`the ${model.kvDtype} pool is too small for the batch`);
  const seqs: BenchSeq[] = prompts.map((p, s) => ({
    tokens: [...p],
    computed: 0,
    blocks: Array.from({ length: perSeq }, (_, i) => s * perSeq + i),
  }));
  const per = Math.max(1, Math.floor(maxBatchTokens / prompts[0]!.length));
  for (let s0 = 0; s0 < seqs.length; s0 += per) {
    const work = seqs.slice(s0, s0 + per).map((seq) => ({ seq, n: seq.tokens.length }));
    const r = await model.step(stepBatch(bs, work));
    work.forEach(({ seq, n }, i) => {
      seq.computed += n;
      seq.tokens.push(r.tokens[i]!);
    });
  }
  return seqs;
}

export async function decodeSideBySide(
  models: Record<string, NativeModel>,
  prompts: number[][],
  steps: number,
  maxBatchTokens: number,
): Promise<Record<string, DecodeResult>> {
  const names = Object.keys(models);
  const seqs: Record<string, BenchSeq[]> = {};
  for (const k of names) seqs[k] = await prefill(models[k]!, prompts, steps, maxBatchTokens);
  const wall: Record<string, number[]> = Object.fromEntries(names.map((k) => [k, []]));
  const cpu: Record<string, number> = Object.fromEntries(names.map((k) => [k, 0]));
  for (let step = 0; step < steps; step++) {
    for (const k of step % 2 === 0 ? names : [...names].reverse()) {
      const model = models[k]!;
      const batch = stepBatch(
        model.blockSize,
        seqs[k]!.map((seq) => ({ seq, n: 1 })),
      );
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const r = await model.step(batch);
      wall[k]!.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu[k]! += (c.user + c.system) / 1e6;
      seqs[k]!.forEach((seq, i) => {
        seq.computed += 1;
        seq.tokens.push(r.tokens[i]!);
      });
    }
  }
  const tokens = steps * prompts.length;
  return Object.fromEntries(
    names.map((k) => [
      k,
      {
        tokPerS: tokens / (wall[k]!.reduce((a, b) => a + b, 0) / 1000),
        tokPerCpuS: tokens / cpu[k]!,
        stepMs: wall[k]!,
        firstSeq: seqs[k]![0]!.tokens.slice(prompts[0]!.length),
      },
    ]),
  );
}
