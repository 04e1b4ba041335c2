/**
 * Goodput SLOs (`--goodput ttft:200 tpot:50 e2el:5000`, all in ms): a request counts as good only when
 * it meets every SLO given, as in DistServe and vLLM's benchmark.
 */
import { tpotOf, type RequestResult } from './request-result.js';

export interface Slo {
  ttftMs?: number;
  tpotMs?: number;
  e2elMs?: number;
}

const KEYS = { ttft: 'ttftMs', tpot: 'tpotMs', e2el: 'e2elMs' } as const;

/** ['ttft:200', 'tpot:50'] → { ttftMs: 200, tpotMs: 50 }. */
export function parseGoodput(words: readonly string[]): Slo {
  const slo: Slo = {};
  for (const word of words) {
    const [name, value, extra] = word.split(':');
    const key = KEYS[name as keyof typeof KEYS];
    const ms = Number(value);
    if (!key || extra !== undefined || !(ms > 0)) {
      throw new RangeError(`'${word}' is not an SLO; write NAME:MS with NAME one of ttft, tpot, e2el and MS > 0`);
    }
    slo[key] = ms;
  }
  return slo;
}

export function isGood(r: RequestResult, slo: Slo): boolean {
  if (!r.ok) return false;
  if (slo.ttftMs !== undefined && !(r.ttftMs <= slo.ttftMs)) return false;
  // A one-token answer has no TPOT; it cannot miss that SLO.
  const tpot = tpotOf(r);
  if (slo.tpotMs !== undefined && tpot !== undefined && tpot > slo.tpotMs) return false;
  if (slo.e2elMs !== undefined && r.latencyMs > slo.e2elMs) return false;
  return true;
}
