/**
 * The Llama forward pass over one token sequence with LoRA on the targeted sites, keeping every
 * activation the backward pass needs (the tape). Per layer:
 *   xn = RMSNorm(x); q,k,v = xn·Wᵀ (+LoRA); RoPE(q,k); att = causal GQA; x += att·Woᵀ (+LoRA)
 *   xn2 = RMSNorm(x); h = silu(xn2·W1ᵀ) ⊙ (xn2·W3ᵀ); x += h·W2ᵀ (+LoRA)
 * then logits = RMSNorm(x)·Woutᵀ.
 */
import { attention } from './attention.js';
import type { BaseWeights } from './base-weights.js';
import type { LoraParams } from './lora-params.js';
import { type Floats, linear, rmsnorm, rope, ropeTables, silu } from './ops.js';

export interface LayerTape {
  xIn: Floats;
  rsAtt: Float64Array;
  xn: Floats;
  q: Floats;
  k: Floats;
  v: Floats;
  z: Partial<Record<'wq' | 'wk' | 'wv' | 'wo' | 'w1' | 'w3' | 'w2', Floats>>;
  probs: Float64Array;
  att: Floats;
  xMid: Floats;
  rsFfn: Float64Array;
  xn2: Floats;
  gate: Floats;
  up: Floats;
  h: Floats;
}

export interface Tape {
  T: number;
  layers: LayerTape[];
  xLast: Floats;
  rsFinal: Float64Array;
  xf: Floats;
  logits: Floats;
  rope: { cos: Float64Array; sin: Float64Array };
}

/** Runs positions 0..T-1 of `ids`; `lora` undefined runs the base model. */
export function forward(base: BaseWeights, ids: ArrayLike<number>, lora?: LoraParams): Tape {
  const { Arr, config: c } = base;
  const T = ids.length;
  const D = c.dim;
  const hd = D / c.nHeads;
  const kvDim = c.nKvHeads * hd;
  const H = c.hiddenDim;
  const tab = ropeTables(T, hd, c.ropeTheta);
  let x = new Arr(T * D);
  for (let t = 0; t < T; t++) {
    const id = ids[t]!;
    if (!(id >= 0 && id < c.vocabSize)) throw new Error(`token id ${id} outside the vocabulary (${c.vocabSize})`);
    x.set(base.tokEmbeddings.subarray(id * D, (id + 1) * D), t * D);
  }
  const layers: LayerTape[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const w = base.layers[l]!;
    const lw = lora?.layers[l];
    const z: LayerTape['z'] = {};
    const site = (name: keyof LayerTape['z'], input: Floats, inDim: number, outDim: number): Floats => {
      const r = linear(Arr, input, T, inDim, w[name], outDim, lw?.get(name));
      if (r.z) z[name] = r.z;
      return r.y;
    };
    const xIn = x;
    const { y: xn, rs: rsAtt } = rmsnorm(Arr, xIn, T, D, w.attentionNorm, c.normEps);
    const q = site('wq', xn, D, D);
    const k = site('wk', xn, D, kvDim);
    const v = site('wv', xn, D, kvDim);
    rope(q, T, c.nHeads, hd, tab);
    rope(k, T, c.nKvHeads, hd, tab);
    const { out: att, probs } = attention(Arr, q, k, v, { T, nHeads: c.nHeads, nKv: c.nKvHeads, hd });
    const o = site('wo', att, D, D);
    const xMid = new Arr(T * D);
    for (let i = 0; i < xMid.length; i++) xMid[i] = xIn[i]! + o[i]!;
    const { y: xn2, rs: rsFfn } = rmsnorm(Arr, xMid, T, D, w.ffnNorm, c.normEps);
    const gate = site('w1', xn2, D, H);
    const up = site('w3', xn2, D, H);
    const h = new Arr(T * H);
    for (let i = 0; i < h.length; i++) h[i] = silu(gate[i]!) * up[i]!;
    const down = site('w2', h, H, D);
    x = new Arr(T * D);
    for (let i = 0; i < x.length; i++) x[i] = xMid[i]! + down[i]!;
    layers.push({ xIn, rsAtt, xn, q, k, v, z, probs, att, xMid, rsFfn, xn2, gate, up, h });
  }
  const { y: xf, rs: rsFinal } = rmsnorm(Arr, x, T, D, base.norm, c.normEps);
  const { y: logits } = linear(Arr, xf, T, D, base.output, c.vocabSize);
  return { T, layers, xLast: x, rsFinal, xf, logits, rope: tab };
}

/**
 * Mean next-token cross-entropy of rows 0..T-2 against ids[1..T-1] (sum over the rows / `count`) and
 * its gradient with respect to the logits: (softmax − onehot) / count.
 */
export function crossEntropy(
  logits: Floats,
  ids: ArrayLike<number>,
  V: number,
  count: number,
): { loss: number; dlogits: Float64Array } {
  const T = ids.length;
  const dlogits = new Float64Array(T * V);
  let loss = 0;
  for (let t = 0; t + 1 < T; t++) {
    const o = t * V;
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < V; j++) if (logits[o + j]! > max) max = logits[o + j]!;
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp(logits[o + j]! - max);
    const target = ids[t + 1]!;
    loss += Math.log(sum) + max - logits[o + target]!;
    for (let j = 0; j < V; j++) dlogits[o + j] = Math.exp(logits[o + j]! - max) / sum / count;
    dlogits[o + target] = dlogits[o + target]! - 1 / count;
  }
  return { loss: loss / count, dlogits };
}
