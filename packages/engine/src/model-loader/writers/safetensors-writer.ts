/**
 * Writes a Hugging Face directory: model.safetensors (or shards + model.safetensors.index.json when
 * maxShardBytes is set), config.json (LlamaForCausalLM), generation_config.json. q/k rows are written
 * in the half-split RoPE layout, as transformers' Llama converter does.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { NativeModelConfig } from '../../native/native-types.js';
import { hfName } from '../hf-reader.js';
import { expectedShapes } from '../manifest.js';
import { encodeTensor } from './encode.js';
import { FileSink } from './file-sink.js';
import type { WeightSource } from './random-tensors.js';

export interface SafetensorsWriteOptions {
  /** Element type of every tensor. Default 'f32'. */
  dtype?: 'f32' | 'f16' | 'bf16';
  /** Split into model-0000i-of-0000n.safetensors shards of about this size. Default: one file. */
  maxShardBytes?: number;
}

interface Entry {
  canonical: string;
  name: string;
  shape: number[];
  bytes: number;
}

export async function writeSafetensorsModel(
  dir: string,
  config: NativeModelConfig,
  weights: WeightSource,
  options: SafetensorsWriteOptions = {},
): Promise<void> {
  const dtype = options.dtype ?? 'f32';
  const width = dtype === 'f32' ? 4 : 2;
  const entries: Entry[] = [...expectedShapes(config)].map(([canonical, shape]) => ({
    canonical,
    name: hfName(canonical),
    shape,
    bytes: shape.reduce((a, b) => a * b, 1) * width,
  }));
  const shards = splitShards(entries, options.maxShardBytes ?? Infinity);
  const names =
    shards.length === 1
      ? ['model.safetensors']
      : shards.map(
          (_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`,
        );
  for (let i = 0; i < shards.length; i++) await writeShard(path.join(dir, names[i]!), shards[i]!, dtype, weights);
  if (shards.length > 1) {
    const weightMap = Object.fromEntries(shards.flatMap((s, i) => s.map((e) => [e.name, names[i]])));
    const total = entries.reduce((n, e) => n + e.bytes, 0);
    await writeFile(
      path.join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2),
    );
  }
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(hfConfigJson(config, dtype), null, 2));
  await writeFile(
    path.join(dir, 'generation_config.json'),
    JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }, null, 2),
  );
}

function splitShards(entries: Entry[], max: number): Entry[][] {
  const shards: Entry[][] = [[]];
  let size = 0;
  for (const e of entries) {
    if (size > 0 && size + e.bytes > max) {
      shards.push([]);
      size = 0;
    }
    shards.at(-1)!.push(e);
    size += e.bytes;
  }
  return shards;
}

async function writeShard(
  file: string,
  entries: Entry[],
  dtype: 'f32' | 'f16' | 'bf16',
  weights: WeightSource,
): Promise<void> {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let at = 0;
  for (const e of entries) {
    header[e.name] = { dtype: dtype.toUpperCase(), shape: e.shape, data_offsets: [at, at + e.bytes] };
    at += e.bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // data starts 8-aligned
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const sink = await FileSink.create(file);
  try {
    await sink.write(len);
    await sink.write(Buffer.from(json));
    for (const e of entries) {
      const permute = /\.w[qk]$/.test(e.canonical);
      for (const chunk of weights.chunks(e.canonical, e.shape, permute)) await sink.write(encodeTensor(chunk, dtype));
    }
  } finally {
    await sink.close();
  }
}

export function hfConfigJson(c: NativeModelConfig, dtype: string): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: c.dim,
    intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.maxSeqLen,
    rms_norm_eps: c.normEps,
    rope_theta: c.ropeTheta,
    rope_scaling: null,
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: c.tiedEmbeddings,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: { f32: 'float32', f16: 'float16', bf16: 'bfloat16' }[dtype],
  };
}
