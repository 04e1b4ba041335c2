/**
 * When each request of a run is sent, as vLLM's serving benchmark does it: inter-arrival gaps drawn from
 * a gamma distribution with shape = burstiness and mean 1 / rate. Burstiness 1 is a Poisson process
 * (exponential gaps); below 1 arrivals come in bursts, above 1 they are more evenly spaced.
 */
import type { Rng } from './rng.js';

export interface ArrivalOptions {
  /** Requests to schedule. */
  count: number;
  /** Mean requests per second; Infinity sends every request at once. */
  rate: number;
  /** Gamma shape of the gaps; 1 = Poisson. Default: 1. */
  burstiness?: number;
}

/** Send times in ms after the start of the run, non-decreasing, the first at 0. */
export function arrivalSchedule(options: ArrivalOptions, rng: Rng): number[] {
  const { count, rate } = options;
  const burstiness = options.burstiness ?? 1;
  if (!(rate > 0)) throw new RangeError(`request rate must be > 0 (got ${rate})`);
  if (!(burstiness > 0)) throw new RangeError(`burstiness must be > 0 (got ${burstiness})`);
  const out = new Array<number>(count).fill(0);
  if (!Number.isFinite(rate)) return out;
  // Gamma(shape k, scale θ) has mean kθ; θ = 1 / (rate k) keeps the mean gap at 1 / rate for any k.
  const scaleS = 1 / (rate * burstiness);
  let t = 0;
  for (let i = 1; i < count; i++) {
    t += rng.gamma(burstiness, scaleS) * 1000;
    out[i] = t;
  }
  return out;
}

/** '1,2,4,inf' → [1, 2, 4, Infinity]. */
export function parseRates(text: string): number[] {
  return text.split(',').map((part) => {
    const s = part.trim().toLowerCase();
    const rate = s === 'inf' || s === 'infinity' ? Infinity : Number(s);
    if (!(rate > 0)) throw new RangeError(`'${part}' is not a request rate (a number > 0, or inf)`);
    return rate;
  });
}
