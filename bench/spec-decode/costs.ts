/**
 * Native step costs behind the predicted speedup: a one-token decode of the target and of the draft,
 * the draft's fused round (one native draft() call proposing k tokens), and the target's verify of
 * k + 1 tokens of one sequence (one forward, k + 1 logit rows), timed
 * through a ModelRunner of their own at a realistic context length, interleaved, median of `reps`,
 * in CPU time of this process (a shared machine's wall time mostly measures the neighbours).
 * Run while the engines are idle (their prefix caches off: these calls write K/V into blocks the
 * engines consider free).
 */
import { BlockManager } from '../../packages/engine/src/block-manager.js';
import { BlockPool } from '../../packages/engine/src/block-pool.js';
import { ModelRunner } from '../../packages/engine/src/model-runner.js';
import type { NativeModel } from '../../packages/engine/src/native/native-types.js';
import { resolveSamplingParams } from '../../packages/engine/src/sampling-params.js';
import type { SchedulerOutput } from '../../packages/engine/src/scheduler.js';
import { Sequence } from '../../packages/engine/src/sequence.js';

export interface StepCosts {
  /** Median CPU ms of a one-token decode of the target. */
  targetDecodeMs: number;
  /** Median CPU ms of a one-token decode of the draft (null without a draft). */
  draftDecodeMs: number | null;
  /** Median CPU ms of the target's forward over k + 1 tokens of one sequence, by k. */
  verifyMs: Record<number, number>;
  /**
   * c: median over repetitions of draft decode / target decode timed back to back (a ratio within
   * one repetition cancels most of a shared machine's swings, which the medians above keep).
   */
  draftRatio: number | null;
  /** v by k: median over repetitions of verify (k + 1 tokens) / target decode. */
  verifyRatio: Record<number, number>;
  /**
   * d by k: median over repetitions of the draft's fused round (draft() proposing k) / target decode,
   * what a greedy draft round costs in place of k·c; {} without a draft.
   */
  draftRoundRatio: Record<number, number>;
}

/** One sequence of `context` tokens already in the KV cache, and a way to time a forward of n more. */
class Probe {
  private readonly bm: BlockManager;
  private readonly runner: ModelRunner;
  private readonly seq: Sequence;
  private step = 0;

  constructor(
    private readonly model: NativeModel,
    context: number,
  ) {
    this.bm = new BlockManager(new BlockPool(model.numBlocks, model.blockSize), false);
    const maxModelLen = Math.min(model.config.maxSeqLen, context + 64);
    this.runner = new ModelRunner(model, {
      blockSize: model.blockSize,
      maxNumBatchedTokens: Math.max(context, 64),
      maxNumSeqs: 1,
      maxModelLen,
    });
    const params = resolveSamplingParams(
      { temperature: 0, maxTokens: 32 },
      { maxModelLen, vocabSize: model.config.vocabSize, promptLen: context },
    );
    const prompt = Array.from({ length: context }, (_, i) => 3 + ((i * 7919) % (model.config.vocabSize - 3)));
    this.seq = new Sequence({
      seqId: 0,
      requestId: 'probe',
      index: 0,
      promptTokenIds: prompt,
      params,
      seed: 1,
      stopTokenIds: [],
      blockSize: model.blockSize,
    });
    this.seq.status = 'running';
  }

  async prefill(): Promise<void> {
    const n = this.seq.numTokens;
    if (!this.bm.allocate(this.seq, n)) throw new Error('probe: the KV pool cannot hold the context');
    await this.model.step(this.runner.prepare(this.out(n)));
    this.seq.numComputedTokens = n;
  }

  /** CPU ms (this process, all threads) of one forward over n new tokens (a decode when n = 1, a verify of n - 1 proposals otherwise); rolled back after. */
  async time(n: number): Promise<number> {
    const seq = this.seq;
    for (let i = 0; i < n; i++) seq.appendToken(5 + i);
    if (!this.bm.allocate(seq, n)) throw new Error('probe: the KV pool is full');
    const batch = this.runner.prepare(this.out(n));
    const t0 = process.cpuUsage();
    await this.model.logits(batch, Int32Array.of(n));
    const t = process.cpuUsage(t0);
    const ms = (t.user + t.system) / 1000;
    this.bm.rollback(seq, seq.numComputedTokens);
    seq.truncate(seq.numComputedTokens);
    this.runner.invalidate();
    return ms;
  }

  /** CPU ms of one fused draft() call proposing k tokens after the context; rolled back after. */
  async timeDraft(k: number): Promise<number> {
    const seq = this.seq;
    seq.appendToken(5);
    if (!this.bm.allocate(seq, k)) throw new Error('probe: the KV pool is full');
    const batch = this.runner.prepare(this.out(1));
    const t0 = process.cpuUsage();
    await this.model.draft!(batch, k);
    const t = process.cpuUsage(t0);
    this.bm.rollback(seq, seq.numComputedTokens);
    seq.truncate(seq.numComputedTokens);
    this.runner.invalidate();
    return (t.user + t.system) / 1000;
  }

  free(): void {
    this.bm.free(this.seq);
  }

  private out(n: number): SchedulerOutput {
    return { step: ++this.step, seqs: [this.seq], numNewTokens: [n], numBatchedTokens: n, preempted: [] };
  }
}

export async function measureStepCosts(
  target: NativeModel,
  draft: NativeModel | null,
  ks: readonly number[],
  opts: { context: number; reps: number },
): Promise<StepCosts> {
  const t = new Probe(target, opts.context);
  const d = draft ? new Probe(draft, opts.context) : null;
  await t.prefill();
  await d?.prefill();
  const samples: Record<string, number[]> = { t: [], d: [], c: [] };
  for (const k of ks) samples[`v${k}`] = [];
  for (const k of ks) samples[`r${k}`] = [];
  const fused = d !== null && draft!.draft !== undefined;
  for (const k of ks) samples[`f${k}`] = [];
  try {
    // Jobs: target decode, draft decode, then the verifies; their order rotates every repetition so
    // that no figure always runs first (after a pause) or last.
    const jobs: Array<() => Promise<number>> = [
      () => t.time(1),
      () => (d ? d.time(1) : Promise.resolve(NaN)),
      ...ks.map((k) => () => t.time(k + 1)),
      ...ks.map((k) => () => (fused ? d!.timeDraft(k) : Promise.resolve(NaN))),
    ];
    for (let r = 0; r < opts.reps + 1; r++) {
      const ms = new Array<number>(jobs.length);
      for (let j = 0; j < jobs.length; j++) {
        const at = (j + r) % jobs.length;
        ms[at] = await jobs[at]!();
      }
      if (r === 0) continue; // warm-up
      const [tm, dm] = [ms[0]!, ms[1]!];
      samples.t!.push(tm);
      if (d) {
        samples.d!.push(dm);
        samples.c!.push(dm / tm);
      }
      ks.forEach((k, i) => {
        samples[`v${k}`]!.push(ms[2 + i]!);
        samples[`r${k}`]!.push(ms[2 + i]! / tm);
        if (fused) samples[`f${k}`]!.push(ms[2 + ks.length + i]! / tm);
      });
    }
  } finally {
    t.free();
    d?.free();
  }
  return {
    targetDecodeMs: median(samples.t!),
    draftDecodeMs: d ? median(samples.d!) : null,
    verifyMs: Object.fromEntries(ks.map((k) => [k, median(samples[`v${k}`]!)])),
    draftRatio: d ? median(samples.c!) : null,
    verifyRatio: Object.fromEntries(ks.map((k) => [k, median(samples[`r${k}`]!)])),
    draftRoundRatio: fused ? Object.fromEntries(ks.map((k) => [k, median(samples[`f${k}`]!)])) : {},
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/**
 * Speedup over plain decoding predicted from the per-token acceptance α, the proposal length k, the
 * draft/target decode cost ratio c and the verify/decode cost ratio v: tokens per round
 * (1 − α^(k+1)) / (1 − α) over the round's cost k·c + v (in target decodes). `round`, when given,
 * is the measured cost of the draft's whole round (fused draft()) in place of k·c.
 */
export function predictedSpeedup(alpha: number, k: number, c: number, v: number, round?: number): number {
  const tokens = alpha >= 1 ? k + 1 : (1 - alpha ** (k + 1)) / (1 - alpha);
  return tokens / ((round ?? k * c) + v);
}
