/**
 * Decode throughput at a fixed batch: `batch` sequences prefilled with `promptLen` random tokens,
 * then `steps` decode steps of one token each (greedy), timed. Models of different KV types take
 * turns round by round, so machine noise lands on all of them alike.
 */
import type { NativeModel } from '../../packages/engine/src/native/native-types.js';
import { type BenchSeq, stepBatch } from './batch.js';

export interface DecodeRun {
  tokPerS: number;
  /** The greedy tokens of the first sequence (to show what the pools made of the same prompt). */
  firstSeq: number[];
}

export async function decodeRound(
  model: NativeModel,
  prompts: number[][],
  steps: number,
  prefillChunk: number,
): Promise<DecodeRun> {
  const bs = model.blockSize;
  const perSeq = Math.ceil((prompts[0]!.length + steps) / bs);
  if (perSeq * prompts.length > model.numBlocks) throw new Error(`${model.kvDtype} pool too small for the batch`);
  const seqs: BenchSeq[] = prompts.map((p, s) => ({
    tokens: [...p],
    computed: 0,
    blocks: Array.from({ length: perSeq }, (_, i) => s * perSeq + i),
  }));
  // prefill, a few sequences per step (not timed)
  const per = Math.max(1, Math.floor(prefillChunk / prompts[0]!.length));
  for (let s0 = 0; s0 < seqs.length; s0 += per) {
    const work = seqs.slice(s0, s0 + per).map((seq) => ({ seq, n: seq.tokens.length }));
    const r = await model.step(stepBatch(bs, work));
    work.forEach(({ seq, n }, i) => {
      seq.computed += n;
      seq.tokens.push(r.tokens[i]!);
    });
  }
  const t0 = performance.now();
  for (let k = 0; k < steps; k++) {
    const r = await model.step(
      stepBatch(
        bs,
        seqs.map((seq) => ({ seq, n: 1 })),
      ),
    );
    seqs.forEach((seq, i) => {
      seq.computed += 1;
      seq.tokens.push(r.tokens[i]!);
    });
  }
  const s = (performance.now() - t0) / 1000;
  return { tokPerS: (steps * seqs.length) / s, firstSeq: seqs[0]!.tokens.slice(prompts[0]!.length) };
}
