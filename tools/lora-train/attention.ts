/**
 * Causal grouped-query attention over one sequence and its backward pass. Shapes: q (T × nHeads·hd),
 * k and v (T × nKv·hd), all after RoPE; query head h reads kv head ⌊h / (nHeads/nKv)⌋ (Hugging Face's
 * repeat_kv). The softmax probabilities are kept, per head, as T×T (upper triangle unused).
 */
import type { Floats, FloatsCtor } from './ops.js';

export interface AttentionShape {
  T: number;
  nHeads: number;
  nKv: number;
  hd: number;
}

export function attention(
  Arr: FloatsCtor,
  q: Floats,
  k: Floats,
  v: Floats,
  s: AttentionShape,
): { out: Floats; probs: Float64Array } {
  const { T, nHeads, nKv, hd } = s;
  const qDim = nHeads * hd;
  const kvDim = nKv * hd;
  const group = nHeads / nKv;
  const scale = 1 / Math.sqrt(hd);
  const out = new Arr(T * qDim);
  const probs = new Float64Array(nHeads * T * T);
  for (let h = 0; h < nHeads; h++) {
    const kh = Math.floor(h / group);
    for (let t = 0; t < T; t++) {
      const qo = t * qDim + h * hd;
      const po = (h * T + t) * T;
      let max = Number.NEGATIVE_INFINITY;
      for (let u = 0; u <= t; u++) {
        const ko = u * kvDim + kh * hd;
        let dot = 0;
        for (let d = 0; d < hd; d++) dot += q[qo + d]! * k[ko + d]!;
        const sc = dot * scale;
        probs[po + u] = sc;
        if (sc > max) max = sc;
      }
      let sum = 0;
      for (let u = 0; u <= t; u++) {
        const e = Math.exp(probs[po + u]! - max);
        probs[po + u] = e;
        sum += e;
      }
      for (let u = 0; u <= t; u++) {
        const p = probs[po + u]! / sum;
        probs[po + u] = p;
        const vo = u * kvDim + kh * hd;
        for (let d = 0; d < hd; d++) out[qo + d] = out[qo + d]! + p * v[vo + d]!;
      }
    }
  }
  return { out, probs };
}

/**
 * From d(out): dv_u += p_tu·dout_t; dp_tu = dout_t·v_u; ds_tu = p_tu(dp_tu − Σ_u' p_tu' dp_tu');
 * dq_t += ds_tu·k_u/√hd; dk_u += ds_tu·q_t/√hd. Returns dq, dk, dv (before RoPE's backward).
 */
export function attentionBack(
  Arr: FloatsCtor,
  dout: Floats,
  q: Floats,
  k: Floats,
  v: Floats,
  probs: Float64Array,
  s: AttentionShape,
): { dq: Floats; dk: Floats; dv: Floats } {
  const { T, nHeads, nKv, hd } = s;
  const qDim = nHeads * hd;
  const kvDim = nKv * hd;
  const group = nHeads / nKv;
  const scale = 1 / Math.sqrt(hd);
  const dq = new Arr(T * qDim);
  const dk = new Arr(T * kvDim);
  const dv = new Arr(T * kvDim);
  const dp = new Float64Array(T);
  for (let h = 0; h < nHeads; h++) {
    const kh = Math.floor(h / group);
    for (let t = 0; t < T; t++) {
      const qo = t * qDim + h * hd;
      const po = (h * T + t) * T;
      let pdp = 0;
      for (let u = 0; u <= t; u++) {
        const vo = u * kvDim + kh * hd;
        const p = probs[po + u]!;
        let dot = 0;
        for (let d = 0; d < hd; d++) {
          const g = dout[qo + d]!;
          dot += g * v[vo + d]!;
          dv[vo + d] = dv[vo + d]! + p * g;
        }
        dp[u] = dot;
        pdp += p * dot;
      }
      for (let u = 0; u <= t; u++) {
        const ds = probs[po + u]! * (dp[u]! - pdp) * scale;
        if (ds === 0) continue;
        const ko = u * kvDim + kh * hd;
        for (let d = 0; d < hd; d++) {
          dq[qo + d] = dq[qo + d]! + ds * k[ko + d]!;
          dk[ko + d] = dk[ko + d]! + ds * q[qo + d]!;
        }
      }
    }
  }
  return { dq, dk, dv };
}
