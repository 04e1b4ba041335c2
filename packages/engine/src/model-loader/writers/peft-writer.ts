/**
 * Writes a PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors) with seeded
 * random A and B for tests and benchmarks: the layout PEFT's save_pretrained writes, so the same
 * reader serves trained adapters. A is (r, in) and B (out, r) per targeted module and layer, in
 * Hugging Face's row order (q/k rows half-split, as the HF base model's own weights).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { NativeModelConfig } from '../../native/native-types.js';
import { expectedShapes } from '../manifest.js';
import { encodeTensor } from './encode.js';
import { FileSink } from './file-sink.js';
import { Prng } from './random-tensors.js';

/** PEFT module name → where it sits in a Llama layer and the engine's canonical weight name. */
const MODULES: Record<string, { scope: string; canonical: string }> = {
  q_proj: { scope: 'self_attn', canonical: 'wq' },
  k_proj: { scope: 'self_attn', canonical: 'wk' },
  v_proj: { scope: 'self_attn', canonical: 'wv' },
  o_proj: { scope: 'self_attn', canonical: 'wo' },
  gate_proj: { scope: 'mlp', canonical: 'w1' },
  up_proj: { scope: 'mlp', canonical: 'w3' },
  down_proj: { scope: 'mlp', canonical: 'w2' },
};

export const ALL_LORA_MODULES = Object.keys(MODULES);

export interface RandomAdapterOptions {
  rank: number;
  /** lora_alpha. Default 2 × rank (scale 2). */
  alpha?: number;
  /** PEFT module names. Default all seven. */
  targetModules?: string[];
  seed: number;
  /** Standard deviation of A's and B's entries. Default 0.02. */
  std?: number;
  dtype?: 'f32' | 'f16' | 'bf16';
  /** adapter_config.json base_model_name_or_path. */
  baseModel?: string;
}

/** PEFT's tensor name of module `m` of layer `layer`, A or B. */
export function peftTensorName(layer: number, module: string, ab: 'A' | 'B'): string {
  const m = MODULES[module];
  if (!m) throw new Error(`unknown LoRA module ${module} (one of ${ALL_LORA_MODULES.join(', ')})`);
  return `base_model.model.model.layers.${layer}.${m.scope}.${module}.lora_${ab}.weight`;
}

export async function writeRandomAdapter(
  dir: string,
  config: NativeModelConfig,
  o: RandomAdapterOptions,
): Promise<void> {
  const modules = o.targetModules ?? ALL_LORA_MODULES;
  const shapes = expectedShapes(config);
  const std = o.std ?? 0.02;
  const tensors = new Map<string, { shape: number[]; values: Float32Array }>();
  for (let l = 0; l < config.nLayers; l++) {
    for (const module of modules) {
      const [out, inDim] = shapes.get(`layers.${l}.${peftModule(module).canonical}`)! as [number, number];
      for (const [ab, shape] of [
        ['A', [o.rank, inDim]],
        ['B', [out, o.rank]],
      ] as const) {
        const name = peftTensorName(l, module, ab);
        const rng = new Prng(seedOf(o.seed, name));
        const values = new Float32Array(shape[0] * shape[1]);
        for (let i = 0; i < values.length; i++) values[i] = std * rng.normal();
        tensors.set(name, { shape: [...shape], values });
      }
    }
  }
  await writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors, o.dtype ?? 'f32');
  await writeAdapterConfig(dir, {
    rank: o.rank,
    alpha: o.alpha ?? 2 * o.rank,
    targetModules: modules,
    baseModel: o.baseModel ?? null,
  });
}

/** adapter_config.json as PEFT's save_pretrained writes it for a plain LoRA (no DoRA, no patterns). */
export async function writeAdapterConfig(
  dir: string,
  o: { rank: number; alpha: number; targetModules: string[]; baseModel: string | null },
): Promise<void> {
  const adapterConfig = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: o.rank,
    lora_alpha: o.alpha,
    lora_dropout: 0,
    target_modules: o.targetModules,
    bias: 'none',
    fan_in_fan_out: false,
    use_rslora: false,
    base_model_name_or_path: o.baseModel,
  };
  await writeFile(path.join(dir, 'adapter_config.json'), JSON.stringify(adapterConfig, null, 2));
}

/** A safetensors file of the given tensors in insertion order. */
export async function writeSafetensors(
  file: string,
  tensors: Map<string, { shape: number[]; values: Float32Array }>,
  dtype: 'f32' | 'f16' | 'bf16',
): Promise<void> {
  const width = dtype === 'f32' ? 4 : 2;
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let at = 0;
  for (const [name, t] of tensors) {
    const bytes = t.values.length * width;
    header[name] = { dtype: dtype.toUpperCase(), shape: t.shape, data_offsets: [at, at + bytes] };
    at += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const sink = await FileSink.create(file);
  try {
    await sink.write(len);
    await sink.write(Buffer.from(json));
    for (const t of tensors.values()) await sink.write(encodeTensor(t.values, dtype));
  } finally {
    await sink.close();
  }
}

/** Where PEFT module `module` sits in a layer and the engine's canonical name of its weight. */
export function peftModule(module: string): { scope: string; canonical: string } {
  const m = MODULES[module];
  if (!m) throw new Error(`unknown LoRA module ${module} (one of ${ALL_LORA_MODULES.join(', ')})`);
  return m;
}

/** FNV-1a of the name mixed with the seed: each tensor its own stream. */
function seedOf(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
