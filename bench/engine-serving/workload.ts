/**
 * Synthetic serving workloads: Poisson arrivals, random prompts of mixed length, mixed output lengths.
 * Seeded, so every mode of one run (and every run with the same seed) replays the same requests.
 */

export interface BenchRequest {
  /** Arrival, ms after the start of the run. */
  arrivalMs: number;
  promptTokenIds: number[];
  outputTokens: number;
}

export interface WorkloadOptions {
  requests: number;
  /** Mean arrivals per second (Poisson process). */
  ratePerS: number;
  promptLen: [number, number];
  outputLen: [number, number];
  vocabSize: number;
  seed: number;
  /** Tokens every prompt starts with (a shared system prompt). Default none. */
  sharedPrefix?: number[];
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random ordinary token ids (ids 0..2 are <unk>, BOS, EOS in Llama vocabularies). */
export function randomTokens(n: number, vocabSize: number, rand: () => number): number[] {
  return Array.from({ length: n }, () => 3 + Math.floor(rand() * (vocabSize - 3)));
}

export function makeWorkload(o: WorkloadOptions): BenchRequest[] {
  const rand = rng(o.seed);
  const between = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const out: BenchRequest[] = [];
  let t = 0;
  for (let i = 0; i < o.requests; i++) {
    if (i > 0) t += (-Math.log(1 - rand()) / o.ratePerS) * 1000; // exponential inter-arrival gaps
    const prompt = [...(o.sharedPrefix ?? []), ...randomTokens(between(...o.promptLen), o.vocabSize, rand)];
    out.push({ arrivalMs: t, promptTokenIds: prompt, outputTokens: between(...o.outputLen) });
  }
  return out;
}
