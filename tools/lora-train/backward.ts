/**
 * The backward pass of forward.ts from d(loss)/d(logits) down to the first layer, through the frozen
 * base weights: it accumulates the LoRA gradients (LoraPair.ga / gb) and computes no base-weight
 * gradient. Each step is the transpose of the forward step it undoes (see forward.ts).
 */
import { attentionBack } from './attention.js';
import type { BaseWeights } from './base-weights.js';
import type { Tape } from './forward.js';
import type { LoraParams } from './lora-params.js';
import { type Floats, linearBack, rmsnormBack, rope, siluGrad, silu } from './ops.js';

export function backward(base: BaseWeights, tape: Tape, dlogits: Floats, lora: LoraParams): void {
  const { Arr, config: c } = base;
  const { T } = tape;
  const D = c.dim;
  const hd = D / c.nHeads;
  const kvDim = c.nKvHeads * hd;
  const H = c.hiddenDim;
  const dxf = linearBack(Arr, dlogits, tape.xf, T, D, base.output, c.vocabSize);
  let dx: Floats = new Arr(T * D);
  rmsnormBack(dxf, tape.xLast, tape.rsFinal, T, D, base.norm, dx);
  for (let l = c.nLayers - 1; l >= 0; l--) {
    const w = base.layers[l]!;
    const lw = lora.layers[l]!;
    const L = tape.layers[l]!;
    const back = (
      name: keyof Tape['layers'][number]['z'],
      dy: Floats,
      input: Floats,
      inDim: number,
      outDim: number,
      into?: Floats,
    ) => linearBack(Arr, dy, input, T, inDim, w[name], outDim, lw.get(name), L.z[name], into);
    // x = xMid + h·W2ᵀ
    const dh = back('w2', dx, L.h, H, D);
    const dgate = new Arr(T * H);
    const dup = new Arr(T * H);
    for (let i = 0; i < dh.length; i++) {
      dgate[i] = dh[i]! * L.up[i]! * siluGrad(L.gate[i]!);
      dup[i] = dh[i]! * silu(L.gate[i]!);
    }
    const dxn2 = back('w1', dgate, L.xn2, D, H);
    back('w3', dup, L.xn2, D, H, dxn2);
    const dxMid = Arr.from(dx);
    rmsnormBack(dxn2, L.xMid, L.rsFfn, T, D, w.ffnNorm, dxMid);
    // xMid = xIn + att·Woᵀ
    const datt = back('wo', dxMid, L.att, D, D);
    const { dq, dk, dv } = attentionBack(Arr, datt, L.q, L.k, L.v, L.probs, {
      T,
      nHeads: c.nHeads,
      nKv: c.nKvHeads,
      hd,
    });
    rope(dq, T, c.nHeads, hd, tape.rope, true);
    rope(dk, T, c.nKvHeads, hd, tape.rope, true);
    const dxn = back('wq', dq, L.xn, D, D);
    back('wk', dk, L.xn, D, kvDim, dxn);
    back('wv', dv, L.xn, D, kvDim, dxn);
    rmsnormBack(dxn, L.xIn, L.rsAtt, T, D, w.attentionNorm, dxMid);
    dx = dxMid;
  }
}
