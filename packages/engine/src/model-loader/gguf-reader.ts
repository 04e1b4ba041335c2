/**
 * GGUF llama models → ModelSpec. Hyperparameters come from llama.*; tensor names token_embd /
 * output_norm / output / blk.N.{attn_norm,attn_q,attn_k,attn_v,attn_output,ffn_norm,ffn_gate,ffn_down,ffn_up}
 * map to canonical names. GGUF lists dims innermost first, so (ne0, ne1) = (dim, vocab) becomes the
 * row-major shape [vocab, dim]. llama.cpp's converters store q/k in the interleaved RoPE layout.
 */
import path from 'node:path';
import type { NativeDType, NativeModelConfig, NativeTensorSpec } from '../native/native-types.js';
import { ModelFormatError, UnsupportedModelError } from '../errors.js';
import { ggufTokenizer } from '../tokenizer/gguf-tokenizer.js';
import { readGgufFile, type GgufFile } from './gguf-file.js';
import { checkManifest } from './manifest.js';
import type { ModelSpec } from './model-spec.js';

/** ggml_type → manifest dtype for the types the addon reads. */
const GGML_DTYPE: Record<number, NativeDType> = { 0: 'f32', 1: 'f16', 2: 'q4_0', 8: 'q8_0', 30: 'bf16' };
const GGML_NAMES: Record<number, string> = {
  3: 'Q4_1',
  6: 'Q5_0',
  7: 'Q5_1',
  9: 'Q8_1',
  10: 'Q2_K',
  11: 'Q3_K',
  12: 'Q4_K',
  13: 'Q5_K',
  14: 'Q6_K',
  15: 'Q8_K',
  16: 'IQ2_XXS',
  17: 'IQ2_XS',
  18: 'IQ3_XXS',
  19: 'IQ1_S',
  20: 'IQ4_NL',
  21: 'IQ3_S',
  22: 'IQ2_S',
  23: 'IQ4_XS',
  24: 'I8',
  25: 'I16',
  26: 'I32',
  27: 'I64',
  28: 'F64',
  29: 'IQ1_M',
  34: 'TQ1_0',
  35: 'TQ2_0',
};

const LAYER_NAMES: Record<string, string> = {
  attn_norm: 'attention_norm',
  attn_q: 'wq',
  attn_k: 'wk',
  attn_v: 'wv',
  attn_output: 'wo',
  ffn_norm: 'ffn_norm',
  ffn_gate: 'w1',
  ffn_down: 'w2',
  ffn_up: 'w3',
};

export async function readGgufSpec(file: string): Promise<ModelSpec> {
  const gguf = readGgufFile(file);
  const md = gguf.metadata;
  const arch = md.get('general.architecture');
  if (arch !== 'llama')
    throw new UnsupportedModelError(file, `architecture '${String(arch)}' (only 'llama' GGUF models)`);
  const tensors = gguf.tensors.flatMap((t) => mapTensor(file, t)) as NativeTensorSpec[];
  const config = ggufConfig(gguf, tensors);
  checkManifest(config, [file], tensors, ggufName);
  const tokenizer = ggufTokenizer(file, md);
  if (tokenizer.vocabSize !== config.vocabSize) {
    throw new ModelFormatError(
      file,
      `vocabulary size mismatch: tokenizer has ${tokenizer.vocabSize} tokens, token_embd has ${config.vocabSize} rows`,
    );
  }
  const eot = md.get('tokenizer.ggml.eot_token_id');
  const stop = [tokenizer.eosId, ...(typeof eot === 'number' && eot !== tokenizer.eosId ? [eot] : [])];
  const name = md.get('general.name');
  return {
    format: 'gguf',
    path: file,
    config,
    files: [file],
    tensors,
    tokenizer,
    bosId: tokenizer.bosId,
    eosId: tokenizer.eosId,
    stopTokenIds: stop,
    ...(typeof md.get('tokenizer.chat_template') === 'string'
      ? { chatTemplate: md.get('tokenizer.chat_template') as string }
      : {}),
    modelName: typeof name === 'string' && name !== 'llama' ? name : path.basename(file).replace(/\.gguf$/i, ''),
  };
}

function mapTensor(file: string, t: GgufFile['tensors'][number]): NativeTensorSpec[] {
  const name = canonicalName(t.name);
  if (name === undefined) return []; // e.g. rope_freqs: not used by the addon
  const dtype = GGML_DTYPE[t.type];
  if (!dtype)
    throw new UnsupportedModelError(
      file,
      `tensor type ${GGML_NAMES[t.type] ?? `#${t.type}`} of ${t.name} (F32, F16, BF16, Q8_0, Q4_0 are read)`,
    );
  // 1-D stays [n]; 2-D (ne0, ne1) → [ne1, ne0]; higher ranks are never llama weights and fail the shape check
  return [{ name, file: 0, offset: t.offset, dtype, shape: [...t.dims].reverse() }];
}

/** Canonical name → GGUF name (for messages). */
export function ggufName(canonical: string): string {
  if (canonical === 'tok_embeddings') return 'token_embd.weight';
  if (canonical === 'norm') return 'output_norm.weight';
  if (canonical === 'output') return 'output.weight';
  const [, layer, short] = canonical.split('.');
  const gguf = Object.entries(LAYER_NAMES).find(([, c]) => c === short)?.[0];
  return `blk.${layer}.${gguf}.weight`;
}

export function canonicalName(ggufName: string): string | undefined {
  if (ggufName === 'token_embd.weight') return 'tok_embeddings';
  if (ggufName === 'output_norm.weight') return 'norm';
  if (ggufName === 'output.weight') return 'output';
  const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(ggufName);
  const mapped = m ? LAYER_NAMES[m[2]!] : undefined;
  return mapped ? `layers.${m![1]}.${mapped}` : undefined;
}

function ggufConfig(g: GgufFile, tensors: NativeTensorSpec[]): NativeModelConfig {
  const md = g.metadata;
  const need = (key: string): number => {
    const v = md.get(key);
    if (typeof v !== 'number') throw new ModelFormatError(g.file, `missing metadata ${key}`);
    return v;
  };
  const biases = g.tensors.find((t) => /^blk\.\d+\.attn_[qkvo]\w*\.bias$/.test(t.name));
  if (biases) throw new UnsupportedModelError(g.file, `attention biases (${biases.name})`);
  const dim = need('llama.embedding_length');
  const nHeads = need('llama.attention.head_count');
  const ropeDims = md.get('llama.rope.dimension_count');
  if (typeof ropeDims === 'number' && ropeDims !== dim / nHeads)
    throw new UnsupportedModelError(
      g.file,
      `partial RoPE (rope.dimension_count ${ropeDims}, head size ${dim / nHeads})`,
    );
  if (md.has('llama.rope.scaling.type') && md.get('llama.rope.scaling.type') !== 'none')
    throw new UnsupportedModelError(g.file, `RoPE scaling '${String(md.get('llama.rope.scaling.type'))}'`);
  if (md.has('llama.expert_count') && Number(md.get('llama.expert_count')) > 0)
    throw new UnsupportedModelError(g.file, 'mixture of experts');
  const embd = tensors.find((t) => t.name === 'tok_embeddings');
  if (!embd) throw new ModelFormatError(g.file, 'missing tensor token_embd.weight');
  const eps = md.get('llama.attention.layer_norm_rms_epsilon');
  const theta = md.get('llama.rope.freq_base');
  return {
    dim,
    hiddenDim: need('llama.feed_forward_length'),
    nLayers: need('llama.block_count'),
    nHeads,
    nKvHeads:
      typeof md.get('llama.attention.head_count_kv') === 'number' ? need('llama.attention.head_count_kv') : nHeads,
    vocabSize: embd.shape[0]!,
    maxSeqLen: need('llama.context_length'),
    ropeTheta: typeof theta === 'number' ? shortestF32(theta) : 10000,
    ropeLayout: 'interleaved',
    normEps: typeof eps === 'number' ? shortestF32(eps) : 1e-5,
    tiedEmbeddings: !tensors.some((t) => t.name === 'output'),
  };
}

/** The shortest decimal that is the same float32 (GGUF stores 1e-5 as 9.99999974e-6; report 1e-5). */
function shortestF32(x: number): number {
  for (let p = 1; p <= 9; p++) {
    const d = Number(x.toPrecision(p));
    if (Math.fround(d) === x) return d;
  }
  return x;
}
