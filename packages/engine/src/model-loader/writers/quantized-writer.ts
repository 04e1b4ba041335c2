/**
 * Writes a Hugging Face directory of a GPTQ or AWQ checkpoint: model.safetensors with every linear
 * layer as qweight / qzeros / scales (/ g_idx for GPTQ) quantized by gptq-quantize.ts (round to nearest
 * in the real layouts), the embedding, norms and output in f16, and config.json with its
 * quantization_config. Weights come from any WeightSource, in Hugging Face row order (q/k rows in the
 * half-split RoPE layout, as writeSafetensorsModel writes them).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { NativeModelConfig } from '../../native/native-types.js';
import { hfName } from '../hf-reader.js';
import { expectedShapes } from '../manifest.js';
import { encodeTensor } from './encode.js';
import { FileSink } from './file-sink.js';
import {
  groupsOf,
  packAwq,
  packGptq,
  quantizationConfig,
  quantizeLinear,
  type QuantizedLinear,
  type QuantScheme,
} from './gptq-quantize.js';
import type { WeightSource } from './random-tensors.js';
import { hfConfigJson } from './safetensors-writer.js';

interface Part {
  name: string;
  dtype: 'I32' | 'F16';
  shape: number[];
}

/** A linear layer's tensors: canonical layers.i.wq etc. */
export function isLinear(canonical: string): boolean {
  return /^layers\.\d+\.w[qkvo123]$/.test(canonical);
}

/** The stored tensors of one canonical tensor under a scheme (names, dtypes, shapes). */
export function partsOf(canonical: string, shape: number[], scheme: QuantScheme): Part[] {
  const name = hfName(canonical);
  if (!isLinear(canonical)) return [{ name, dtype: 'F16', shape }];
  const prefix = name.slice(0, -'.weight'.length);
  const [rows, cols] = shape as [number, number];
  const G = groupsOf(scheme, cols);
  if (scheme.method === 'awq') {
    return [
      { name: `${prefix}.qweight`, dtype: 'I32', shape: [cols, rows / 8] },
      { name: `${prefix}.qzeros`, dtype: 'I32', shape: [G, rows / 8] },
      { name: `${prefix}.scales`, dtype: 'F16', shape: [G, rows] },
    ];
  }
  const p = 32 / scheme.bits;
  return [
    { name: `${prefix}.qweight`, dtype: 'I32', shape: [cols / p, rows] },
    { name: `${prefix}.qzeros`, dtype: 'I32', shape: [G, rows / p] },
    { name: `${prefix}.scales`, dtype: 'F16', shape: [G, rows] },
    { name: `${prefix}.g_idx`, dtype: 'I32', shape: [cols] },
  ];
}

/**
 * Seed of a layer's desc_act order, from the writer's seed and the layer's input: GPTQ orders a layer's
 * inputs by its Hessian, built from the inputs alone, so layers reading the same input (q|k|v, gate|up)
 * share one order.
 */
export function layerSeed(seed: number, canonical: string, perLayer = false): number {
  const input = perLayer ? canonical : canonical.replace(/\.w[qkv]$/, '.attn_in').replace(/\.w[13]$/, '.ffn_in');
  let h = (0x9e3779b9 ^ seed) >>> 0;
  for (let i = 0; i < input.length; i++) h = Math.imul(h ^ input.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** All rows of a tensor from a source, in Hugging Face order. */
export function wholeTensor(weights: WeightSource, canonical: string, shape: number[]): Float32Array {
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let at = 0;
  for (const chunk of weights.chunks(canonical, shape, /\.w[qk]$/.test(canonical))) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** The layer as the writer quantizes it (tests rebuild references from the same call). */
export function quantizeCanonical(
  weights: WeightSource,
  canonical: string,
  shape: number[],
  scheme: QuantScheme,
  seed: number,
): QuantizedLinear {
  return quantizeLinear(
    wholeTensor(weights, canonical, shape),
    shape[0]!,
    shape[1]!,
    scheme,
    layerSeed(seed, canonical, scheme.descAct === 'per-layer'),
  );
}

export async function writeQuantizedModel(
  dir: string,
  config: NativeModelConfig,
  weights: WeightSource,
  scheme: QuantScheme,
  seed = 0,
): Promise<void> {
  const tensors = [...expectedShapes(config)];
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let at = 0;
  for (const [canonical, shape] of tensors)
    for (const p of partsOf(canonical, shape, scheme)) {
      const bytes = p.shape.reduce((a, b) => a * b, 1) * (p.dtype === 'I32' ? 4 : 2);
      header[p.name] = { dtype: p.dtype, shape: p.shape, data_offsets: [at, at + bytes] };
      at += bytes;
    }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const sink = await FileSink.create(path.join(dir, 'model.safetensors'));
  try {
    await sink.write(len);
    await sink.write(Buffer.from(json));
    for (const [canonical, shape] of tensors) {
      if (!isLinear(canonical)) {
        for (const chunk of weights.chunks(canonical, shape, false)) await sink.write(encodeTensor(chunk, 'f16'));
        continue;
      }
      const l = quantizeCanonical(weights, canonical, shape, scheme, seed);
      const packed = scheme.method === 'awq' ? packAwq(l) : packGptq(l, scheme);
      await sink.write(bytesOf(packed.qweight));
      await sink.write(bytesOf(packed.qzeros));
      await sink.write(bytesOf(l.scales));
      if (scheme.method === 'gptq') await sink.write(bytesOf(l.gIdx));
    }
  } finally {
    await sink.close();
  }
  const cfg = { ...hfConfigJson(config, 'f16'), quantization_config: quantizationConfig(scheme) };
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(cfg, null, 2));
  await writeFile(
    path.join(dir, 'generation_config.json'),
    JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }, null, 2),
  );
}

function bytesOf(a: Int32Array | Uint16Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
