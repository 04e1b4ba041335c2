/**
 * The frozen base model the LoRA trainer runs: a Llama's tensors as flat row-major arrays, read from a
 * Hugging Face directory (f32 safetensors, half-split RoPE rows: the order PEFT adapters are written in)
 * or drawn at random for the gradient check.
 */
import { readBytesAt } from '../../packages/engine/src/model-loader/binary-file.js';
import { readModelSpec } from '../../packages/engine/src/model-loader/read-model-spec.js';
import { Prng } from '../../packages/engine/src/model-loader/writers/random-tensors.js';
import type { NativeModelConfig } from '../../packages/engine/src/native/native-types.js';
import { type Floats, type FloatsCtor, filled } from './ops.js';

export interface LayerWeights {
  attentionNorm: Floats;
  wq: Floats;
  wk: Floats;
  wv: Floats;
  wo: Floats;
  ffnNorm: Floats;
  /** gate (hidden, dim) */
  w1: Floats;
  /** down (dim, hidden) */
  w2: Floats;
  /** up (hidden, dim) */
  w3: Floats;
}

export interface BaseWeights {
  config: NativeModelConfig;
  Arr: FloatsCtor;
  tokEmbeddings: Floats;
  layers: LayerWeights[];
  norm: Floats;
  /** The classifier (vocab, dim): tokEmbeddings itself when tied. */
  output: Floats;
}

const LAYER_KEYS = ['attentionNorm', 'wq', 'wk', 'wv', 'wo', 'ffnNorm', 'w1', 'w2', 'w3'] as const;
const CANONICAL: Record<(typeof LAYER_KEYS)[number], string> = {
  attentionNorm: 'attention_norm',
  wq: 'wq',
  wk: 'wk',
  wv: 'wv',
  wo: 'wo',
  ffnNorm: 'ffn_norm',
  w1: 'w1',
  w2: 'w2',
  w3: 'w3',
};

/** Reads an f32 Hugging Face Llama directory; other layouts are refused (the adapter's row order). */
export async function loadBaseWeights(dir: string): Promise<BaseWeights & { modelName: string }> {
  const spec = await readModelSpec(dir);
  if (spec.format !== 'safetensors' || spec.config.ropeLayout !== 'half')
    throw new Error(`${dir}: the trainer reads a Hugging Face (safetensors) Llama directory, not ${spec.format}`);
  const byName = new Map(spec.tensors.map((t) => [t.name, t]));
  const read = (name: string): Float32Array => {
    const t = byName.get(name);
    if (!t) throw new Error(`${dir}: no tensor ${name}`);
    if (t.dtype !== 'f32') throw new Error(`${dir}: ${name} is ${t.dtype}; the trainer reads f32 models`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    const buf = readBytesAt(spec.files[t.file]!, t.offset, 4 * n, name);
    return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + 4 * n));
  };
  const c = spec.config;
  const tokEmbeddings = read('tok_embeddings');
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const lw = {} as LayerWeights;
    for (const k of LAYER_KEYS) lw[k] = read(`layers.${l}.${CANONICAL[k]}`);
    layers.push(lw);
  }
  return {
    config: c,
    Arr: Float32Array,
    tokEmbeddings,
    layers,
    norm: read('norm'),
    output: c.tiedEmbeddings ? tokEmbeddings : read('output'),
    modelName: spec.modelName,
  };
}

/** Seeded random weights (norm gains near 1, matrices N(0, std²)) for tests. */
export function randomBaseWeights(config: NativeModelConfig, seed: number, Arr: FloatsCtor, std = 0.3): BaseWeights {
  const rng = new Prng(seed);
  const mat = (n: number) => filled(Arr, n, () => std * rng.normal());
  const gain = (n: number) => filled(Arr, n, () => 1 + 0.1 * rng.normal());
  const { dim, hiddenDim, nHeads, nKvHeads, vocabSize } = config;
  const hd = dim / nHeads;
  const kv = nKvHeads * hd;
  const tokEmbeddings = mat(vocabSize * dim);
  const layers = Array.from({ length: config.nLayers }, () => ({
    attentionNorm: gain(dim),
    wq: mat(dim * dim),
    wk: mat(kv * dim),
    wv: mat(kv * dim),
    wo: mat(dim * dim),
    ffnNorm: gain(dim),
    w1: mat(hiddenDim * dim),
    w2: mat(dim * hiddenDim),
    w3: mat(hiddenDim * dim),
  }));
  return {
    config,
    Arr,
    tokEmbeddings,
    layers,
    norm: gain(dim),
    output: config.tiedEmbeddings ? tokEmbeddings : mat(vocabSize * dim),
  };
}
