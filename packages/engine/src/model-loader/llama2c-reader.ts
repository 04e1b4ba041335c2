/**
 * llama2.c "legacy v0" checkpoints: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size, seq_len; negative vocab_size = separate classifier), then f32 tensors back to back:
 * tok_embeddings (vocab, dim), rms_att (L, dim), wq (L, dim, dim), wk (L, kvDim, dim), wv (L, kvDim, dim),
 * wo (L, dim, dim), rms_ffn (L, dim), w1 (L, hidden, dim), w2 (L, dim, hidden), w3 (L, hidden, dim),
 * rms_final (dim), two unused RoPE tables (seq_len, headSize/2) each, then the classifier (vocab, dim)
 * if not shared. The format has no magic: a header is accepted when its numbers are plausible and the
 * file size matches them exactly.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { NativeModelConfig, NativeTensorSpec } from '../native/native-types.js';
import { ModelFormatError } from '../errors.js';
import { readLlama2cTokenizer } from '../tokenizer/llama2c-tokenizer.js';
import type { SentencePieceBpe } from '../tokenizer/sentencepiece-bpe.js';
import { fileSize, readBytesAt } from './binary-file.js';
import { checkConfig, checkManifest } from './manifest.js';
import type { ModelSpec } from './model-spec.js';

export const LLAMA2C_HEADER_BYTES = 28;

export interface Llama2cHeader {
  config: NativeModelConfig;
  sharedClassifier: boolean;
}

export function parseLlama2cHeader(file: string, header: Buffer): Llama2cHeader {
  const v = Array.from({ length: 7 }, (_, i) => header.readInt32LE(i * 4));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, maxSeqLen] = v as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const config: NativeModelConfig = {
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize: Math.abs(vocab),
    maxSeqLen,
    ropeTheta: 10000,
    ropeLayout: 'interleaved',
    normEps: 1e-5,
    tiedEmbeddings: vocab > 0,
  };
  try {
    checkConfig(file, config);
  } catch (err) {
    throw new ModelFormatError(
      file,
      `not a llama2.c checkpoint: header [${v}] is implausible (${(err as ModelFormatError).problem})`,
    );
  }
  return { config, sharedClassifier: vocab > 0 };
}

/** The f32 tensors of a checkpoint and where they lie; `end` is the byte just past the last one. */
export function llama2cLayout(c: NativeModelConfig): { tensors: NativeTensorSpec[]; end: number } {
  const headSize = c.dim / c.nHeads;
  const kvDim = c.nKvHeads * headSize;
  const tensors: NativeTensorSpec[] = [];
  let at = LLAMA2C_HEADER_BYTES;
  const one = (name: string, shape: number[]) => {
    tensors.push({ name, file: 0, offset: at, dtype: 'f32', shape });
    at += shape.reduce((a, b) => a * b, 1) * 4;
  };
  const perLayer = (name: string, shape: number[]) => {
    for (let l = 0; l < c.nLayers; l++) one(`layers.${l}.${name}`, shape);
  };
  one('tok_embeddings', [c.vocabSize, c.dim]);
  perLayer('attention_norm', [c.dim]);
  perLayer('wq', [c.dim, c.dim]);
  perLayer('wk', [kvDim, c.dim]);
  perLayer('wv', [kvDim, c.dim]);
  perLayer('wo', [c.dim, c.dim]);
  perLayer('ffn_norm', [c.dim]);
  perLayer('w1', [c.hiddenDim, c.dim]);
  perLayer('w2', [c.dim, c.hiddenDim]);
  perLayer('w3', [c.hiddenDim, c.dim]);
  one('norm', [c.dim]);
  at += c.maxSeqLen * headSize * 4; // freq_cis_real + freq_cis_imag: (seq_len, headSize/2) f32 each
  if (!c.tiedEmbeddings) one('output', [c.vocabSize, c.dim]);
  return { tensors, end: at };
}

export async function readLlama2cSpec(file: string, tokenizerPath?: string): Promise<ModelSpec> {
  const { config } = parseLlama2cHeader(file, readBytesAt(file, 0, LLAMA2C_HEADER_BYTES, 'llama2.c header'));
  const { tensors, end } = llama2cLayout(config);
  const size = fileSize(file);
  if (size < end) throw new ModelFormatError(file, `truncated: the header implies ${end} bytes, the file has ${size}`);
  if (size > end)
    throw new ModelFormatError(
      file,
      `not a llama2.c v0 checkpoint: the header implies ${end} bytes, the file has ${size}`,
    );
  checkManifest(config, [file], tensors);
  const tokenizer = loadTokenizerFor(file, config.vocabSize, tokenizerPath);
  return {
    format: 'llama2c',
    path: file,
    config,
    files: [file],
    tensors,
    tokenizer,
    bosId: 1,
    eosId: 2,
    // TinyStories checkpoints end a story with BOS; run.c stops there
    stopTokenIds: [2, 1],
    modelName: path.basename(file).replace(/\.bin$/, ''),
  };
}

/**
 * The tokenizer.bin for a checkpoint: `explicit` when given; else, in the checkpoint's directory,
 * tokenizer.bin, tok{vocab}.bin, then other tok*.bin files (sorted), the first that holds exactly
 * `vocab` tokens.
 */
export function loadTokenizerFor(checkpoint: string, vocab: number, explicit?: string): SentencePieceBpe {
  if (explicit) return readLlama2cTokenizer(path.resolve(explicit), vocab);
  const dir = path.dirname(checkpoint);
  const others = readdirSync(dir)
    .filter((f) => /^tok.*\.bin$/.test(f))
    .sort();
  const candidates = [...new Set(['tokenizer.bin', `tok${vocab}.bin`, ...others])]
    .map((f) => path.join(dir, f))
    .filter((f) => existsSync(f) && f !== checkpoint);
  const rejected: string[] = [];
  for (const candidate of candidates) {
    try {
      return readLlama2cTokenizer(candidate, vocab);
    } catch (err) {
      if (!(err instanceof ModelFormatError)) throw err;
      rejected.push(`${path.basename(candidate)}: ${err.problem}`);
    }
  }
  const tried = rejected.length ? ` (${rejected.join('; ')})` : '';
  throw new ModelFormatError(
    checkpoint,
    `missing tokenizer: no tokenizer.bin / tok*.bin with ${vocab} tokens in ${dir}${tried}; pass tokenizerPath`,
  );
}
