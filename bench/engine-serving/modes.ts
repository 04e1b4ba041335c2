/**
 * The three ways of serving one workload on one engine, and their figures:
 * continuous batching (every request submitted on arrival), static batching (batches of `batchSize`
 * in arrival order, prompts padded to the batch's longest, every member generating as many tokens as
 * the batch's longest and returned only when the whole batch is done), and one request at a time.
 */
import type { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import type { BenchRequest } from './workload.js';

export interface RequestTiming {
  arrivalMs: number;
  firstTokenMs: number;
  doneMs: number;
  /** Useful output tokens (a static-batching member's own, not its padding). */
  outputTokens: number;
}

export interface ModeResult {
  mode: string;
  wallMs: number;
  outputTokens: number;
  outputTokPerS: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
  tpotP50Ms: number;
  tpotP99Ms: number;
  preemptions: number;
  prefixCacheHitRate: number;
  /** CPU seconds the process spent (all threads): on a shared machine, tokens per CPU-second is the steadier figure. */
  cpuS: number;
  outputTokPerCpuS: number;
  /** Engine steps, their mean number of sequences, and the time inside runner.execute (array building + native step). */
  steps: number;
  meanBatch: number;
  stepMs: number;
}

/** Step figures gathered from the engine's 'step' events. */
export interface StepTally {
  steps: number;
  seqs: number;
  ms: number;
}

const sleepUntil = (t0: number, atMs: number) =>
  new Promise<void>((r) => setTimeout(r, Math.max(0, t0 + atMs - performance.now())));

/** Runs one request (its prompt, `outputTokens` greedy tokens) and times it relative to `t0`. */
async function timed(
  engine: LLMEngine,
  prompt: number[],
  outputTokens: number,
  t0: number,
): Promise<{ first: number; done: number }> {
  let first = NaN;
  for await (const out of engine.generate(
    { tokenIds: prompt },
    { temperature: 0, maxTokens: outputTokens, ignoreEos: true },
  )) {
    if (Number.isNaN(first) && out.tokenIds.length > 0) first = performance.now() - t0;
  }
  return { first, done: performance.now() - t0 };
}

export async function runContinuous(engine: LLMEngine, reqs: BenchRequest[]): Promise<RequestTiming[]> {
  const t0 = performance.now();
  return Promise.all(
    reqs.map(async (r) => {
      await sleepUntil(t0, r.arrivalMs);
      const { first, done } = await timed(engine, r.promptTokenIds, r.outputTokens, t0);
      return { arrivalMs: r.arrivalMs, firstTokenMs: first, doneMs: done, outputTokens: r.outputTokens };
    }),
  );
}

export async function runSequential(engine: LLMEngine, reqs: BenchRequest[]): Promise<RequestTiming[]> {
  const t0 = performance.now();
  const out: RequestTiming[] = [];
  for (const r of reqs) {
    await sleepUntil(t0, r.arrivalMs);
    const { first, done } = await timed(engine, r.promptTokenIds, r.outputTokens, t0);
    out.push({ arrivalMs: r.arrivalMs, firstTokenMs: first, doneMs: done, outputTokens: r.outputTokens });
  }
  return out;
}

export async function runStatic(
  engine: LLMEngine,
  reqs: BenchRequest[],
  batchSize: number,
  padToken: number,
): Promise<RequestTiming[]> {
  const t0 = performance.now();
  const out: RequestTiming[] = [];
  for (let b = 0; b < reqs.length; b += batchSize) {
    const batch = reqs.slice(b, b + batchSize);
    await sleepUntil(t0, batch[batch.length - 1]!.arrivalMs); // a batch starts once it is full
    const promptLen = Math.max(...batch.map((r) => r.promptTokenIds.length));
    const outLen = Math.max(...batch.map((r) => r.outputTokens));
    const runs = await Promise.all(
      batch.map((r) => {
        const padded = [...new Array<number>(promptLen - r.promptTokenIds.length).fill(padToken), ...r.promptTokenIds];
        return timed(engine, padded, outLen, t0);
      }),
    );
    const batchDone = Math.max(...runs.map((x) => x.done));
    batch.forEach((r, i) =>
      out.push({
        arrivalMs: r.arrivalMs,
        firstTokenMs: runs[i]!.first,
        doneMs: batchDone,
        outputTokens: r.outputTokens,
      }),
    );
  }
  return out;
}

export function summarize(
  mode: string,
  timings: RequestTiming[],
  engine: LLMEngine,
  cpu: NodeJS.CpuUsage,
  tally: StepTally,
): ModeResult {
  const wallMs = Math.max(...timings.map((t) => t.doneMs)) - Math.min(...timings.map((t) => t.arrivalMs));
  const outputTokens = timings.reduce((s, t) => s + t.outputTokens, 0);
  const ttft = timings.map((t) => t.firstTokenMs - t.arrivalMs);
  const tpot = timings.filter((t) => t.outputTokens > 1).map((t) => (t.doneMs - t.firstTokenMs) / (t.outputTokens - 1));
  const st = engine.stats();
  return {
    mode,
    wallMs,
    outputTokens,
    outputTokPerS: (outputTokens * 1000) / wallMs,
    ttftP50Ms: percentile(ttft, 50),
    ttftP99Ms: percentile(ttft, 99),
    tpotP50Ms: percentile(tpot, 50),
    tpotP99Ms: percentile(tpot, 99),
    preemptions: st.preemptions,
    prefixCacheHitRate: st.prefixCacheHitRate,
    cpuS: (cpu.user + cpu.system) / 1e6,
    outputTokPerCpuS: outputTokens / ((cpu.user + cpu.system) / 1e6),
    steps: tally.steps,
    meanBatch: tally.seqs / Math.max(1, tally.steps),
    stepMs: tally.ms,
  };
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
