/**
 * The trainable LoRA matrices: for each layer and targeted PEFT module (q_proj … down_proj) an A (r, in)
 * and a B (out, r) with their gradients, and the PEFT directory they are saved as (the layout
 * peft-adapter.ts reads: Hugging Face row order, scale lora_alpha / r).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import {
  peftModule,
  peftTensorName,
  writeAdapterConfig,
  writeSafetensors,
} from '../../packages/engine/src/model-loader/writers/peft-writer.js';
import { Prng } from '../../packages/engine/src/model-loader/writers/random-tensors.js';
import type { BaseWeights, LayerWeights } from './base-weights.js';
import { type Floats, type LoraPair, filled } from './ops.js';

export interface LoraOptions {
  rank: number;
  /** lora_alpha; the scale is alpha / rank. */
  alpha: number;
  /** PEFT module names, e.g. ['q_proj', 'v_proj', 'o_proj']. */
  targetModules: string[];
  seed: number;
  /**
   * Standard deviation of B's initial entries: 0 (PEFT's init, the adapter starts as the identity) for
   * training; non-zero for the gradient check, where B = 0 would leave A's gradient at 0.
   */
  bStd?: number;
}

export class LoraParams {
  /** Per layer: canonical weight name (wq, wk, wv, wo, w1, w3, w2) → its pair. */
  readonly layers: Map<keyof LayerWeights, LoraPair>[] = [];

  constructor(
    readonly base: BaseWeights,
    readonly options: LoraOptions,
  ) {
    const { Arr } = base;
    const rng = new Prng(options.seed);
    const { rank: r, alpha } = options;
    for (let l = 0; l < base.config.nLayers; l++) {
      const m = new Map<keyof LayerWeights, LoraPair>();
      for (const module of options.targetModules) {
        const [out, inDim] = siteShape(base, module);
        // A ~ N(0, 1/in): x·Aᵀ keeps x's scale (PEFT draws a Kaiming-uniform A to the same end).
        const a = filled(Arr, r * inDim, () => rng.normal() / Math.sqrt(inDim));
        const b = filled(Arr, out * r, () => (options.bStd ?? 0) * rng.normal());
        m.set(peftModule(module).canonical as keyof LayerWeights, {
          r,
          scale: alpha / r,
          a,
          b,
          ga: new Arr(a.length),
          gb: new Arr(b.length),
        });
      }
      this.layers.push(m);
    }
  }

  /** Every trainable tensor with its gradient, in a fixed order (the optimizer's state follows it). */
  tensors(): { value: Floats; grad: Floats }[] {
    return this.layers.flatMap((m) =>
      [...m.values()].flatMap((p) => [
        { value: p.a, grad: p.ga },
        { value: p.b, grad: p.gb },
      ]),
    );
  }

  zeroGrad(): void {
    for (const t of this.tensors()) t.grad.fill(0);
  }

  /** Writes adapter_config.json + adapter_model.safetensors (f32) into `dir` (created). */
  async save(dir: string, baseModel: string | null): Promise<void> {
    mkdirSync(dir, { recursive: true });
    const tensors = new Map<string, { shape: number[]; values: Float32Array }>();
    for (let l = 0; l < this.layers.length; l++) {
      for (const module of this.options.targetModules) {
        const p = this.layers[l]!.get(peftModule(module).canonical as keyof LayerWeights)!;
        const [out, inDim] = siteShape(this.base, module);
        tensors.set(peftTensorName(l, module, 'A'), { shape: [p.r, inDim], values: f32(p.a) });
        tensors.set(peftTensorName(l, module, 'B'), { shape: [out, p.r], values: f32(p.b) });
      }
    }
    await writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors, 'f32');
    await writeAdapterConfig(dir, {
      rank: this.options.rank,
      alpha: this.options.alpha,
      targetModules: this.options.targetModules,
      baseModel,
    });
  }
}

/** [out, in] of the base weight a PEFT module adapts. */
function siteShape(base: BaseWeights, module: string): [number, number] {
  const { dim, hiddenDim, nHeads, nKvHeads } = base.config;
  const kv = (dim / nHeads) * nKvHeads;
  const shapes: Record<string, [number, number]> = {
    wq: [dim, dim],
    wk: [kv, dim],
    wv: [kv, dim],
    wo: [dim, dim],
    w1: [hiddenDim, dim],
    w3: [hiddenDim, dim],
    w2: [dim, hiddenDim],
  };
  return shapes[peftModule(module).canonical]!;
}

function f32(v: Floats): Float32Array {
  return v instanceof Float32Array ? v : Float32Array.from(v);
}
