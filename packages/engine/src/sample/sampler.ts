/**
 * Sampling in TypeScript over raw logits, with the native sampler's exact semantics
 * (native/src/core/sampler.cpp): vLLM penalties, greedy as the first maximum, and a draw that walks
 * the candidates (index order, or best-first when top-k / top-p cut them) with the uniform
 * u(seed, position) from splitmix64. Speculative steps get raw logits from `model.logits()`, so
 * every row of such a step — speculating or not — is sampled here; a row sampled here yields the
 * same token as the native `step()` would have.
 */
import type { ResolvedSamplingParams } from '../sampling-params.js';
import type { TokenLogprob } from '../request-output.js';

const MASK64 = (1n << 64n) - 1n;

/** Native `splitmix64` on BigInt (wrapping 64-bit arithmetic). */
function splitmix64(x: bigint): bigint {
  x = (x + 0x9e3779b97f4a7c15n) & MASK64;
  x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return x ^ (x >> 31n);
}

/** Uniform in [0, 1) from (seed, position) only: the native sampler's draw, bit for bit. */
export function uniform(seed: number, position: number): number {
  const h = splitmix64((BigInt(seed >>> 0) << 32n) | BigInt(position >>> 0));
  return Number(h >> 11n) / 9007199254740992;
}

/** The part of the sampling parameters that shapes a distribution. */
export type DistributionParams = Pick<
  ResolvedSamplingParams,
  'temperature' | 'topK' | 'topP' | 'minP' | 'repetitionPenalty' | 'presencePenalty' | 'frequencyPenalty'
>;

/**
 * vLLM penalties in place, as the native sampler applies them: repetition over prompt + output (once
 * per distinct token), presence and frequency over output tokens only. `tokens[0, len)` is the
 * context of the row, the first `promptLen` from the prompt.
 */
export function applyPenalties(
  logits: Float32Array,
  p: DistributionParams,
  tokens: ArrayLike<number>,
  promptLen: number,
  len: number,
): void {
  // The batch carries parameters as float32; round them the same way for identical results.
  const repP = Math.fround(p.repetitionPenalty);
  const freqP = Math.fround(p.frequencyPenalty);
  const presP = Math.fround(p.presencePenalty);
  const rep = p.repetitionPenalty !== 1;
  const out = p.presencePenalty !== 0 || p.frequencyPenalty !== 0;
  if (!rep && !out) return;
  const counts = new Map<number, number>();
  for (let i = promptLen; i < len; i++) counts.set(tokens[i]!, (counts.get(tokens[i]!) ?? 0) + 1);
  const seen = new Set<number>();
  for (let i = 0; i < len; i++) {
    const t = tokens[i]!;
    if (seen.has(t)) continue;
    seen.add(t);
    if (rep) logits[t] = Math.fround(logits[t]! > 0 ? logits[t]! / repP : logits[t]! * repP);
    const c = counts.get(t) ?? 0;
    if (out && c > 0) logits[t] = Math.fround(logits[t]! - Math.fround(Math.fround(freqP * c) + presP));
  }
}

/** Index of the first maximum (the native greedy choice). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** Candidates of a draw: their ids in walk order and unnormalised weights (0 = cut). */
export interface Candidates {
  ids: Int32Array;
  weights: Float64Array;
  total: number;
}

/** Native `draw()` up to the walk: tempered weights, top-k, top-p and min-p cuts. Needs temperature > 0. */
export function candidates(logits: ArrayLike<number>, p: DistributionParams): Candidates {
  const V = logits.length;
  const maxLogit = logits[argmax(logits)]!;
  const invT = 1 / Math.fround(p.temperature);
  const topP = Math.fround(p.topP);
  const probs = new Float64Array(V);
  for (let i = 0; i < V; i++) probs[i] = Math.fround(Math.exp((logits[i]! - maxLogit) * invT));
  let ids = Int32Array.from({ length: V }, (_, i) => i);
  const topK = p.topK > 0 && p.topK < V;
  if (topK || topP < 1) {
    ids.sort((a, b) => probs[b]! - probs[a]! || a - b);
    if (topK) ids = ids.slice(0, p.topK);
  }
  let n = ids.length;
  if (topP < 1) {
    let mass = 0;
    for (let i = 0; i < n; i++) mass += probs[ids[i]!]!;
    let keep = 0;
    let cum = 0;
    while (keep < n && cum < topP * mass) cum += probs[ids[keep++]!]!;
    n = Math.max(keep, 1);
  }
  const floor = Math.fround(p.minP);
  const weights = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const w = probs[ids[i]!]!;
    if (w >= floor) weights[i] = w;
    total += weights[i]!;
  }
  return { ids: ids.subarray(0, n), weights, total };
}

/** Native walk: the first candidate whose cumulative weight exceeds u * total. */
export function walk(c: Candidates, u: number): number {
  const target = u * c.total;
  let cum = 0;
  let last = c.ids[0]!;
  for (let i = 0; i < c.ids.length; i++) {
    if (c.weights[i] === 0) continue;
    cum += c.weights[i]!;
    last = c.ids[i]!;
    if (cum > target) return last;
  }
  return last;
}

/** The normalised distribution of a draw as a dense (vocab) vector: p(x) for rejection sampling. */
export function distribution(logits: ArrayLike<number>, p: DistributionParams): Float64Array {
  const out = new Float64Array(logits.length);
  if (p.temperature === 0) {
    out[argmax(logits)] = 1;
    return out;
  }
  const c = candidates(logits, p);
  for (let i = 0; i < c.ids.length; i++) out[c.ids[i]!] = c.weights[i]! / c.total;
  return out;
}

/** One token exactly as the native step samples it at `position` (the index of the new token). */
export function sampleLogits(logits: ArrayLike<number>, p: DistributionParams, seed: number, position: number): number {
  if (p.temperature === 0) return argmax(logits);
  return walk(candidates(logits, p), uniform(seed, position));
}

/** Logprob of `tokenId` and the `numTop` best under the (penalised, untempered) logits, as the native step reports them. */
export function logprobOfRow(logits: ArrayLike<number>, tokenId: number, numTop: number): TokenLogprob {
  const maxLogit = logits[argmax(logits)]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - maxLogit);
  const lse = maxLogit + Math.log(sum);
  const top: TokenLogprob['top'] = [];
  if (numTop > 0) {
    const ids = Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
    for (let j = 0; j < Math.min(numTop, ids.length); j++)
      top.push({ tokenId: ids[j]!, logprob: logits[ids[j]!]! - lse });
  }
  return { tokenId, logprob: logits[tokenId]! - lse, top };
}
