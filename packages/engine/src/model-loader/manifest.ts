/**
 * Checks shared by every format: the config is coherent, every canonical tensor is present with the
 * shape the config implies, block-quantized rows are whole blocks, and each tensor lies inside its file.
 * Readers call checkManifest() last, so the addon only ever sees a consistent manifest.
 */
import type { NativeDType, NativeModelConfig, NativeTensorSpec } from '../native/native-types.js';
import { ModelFormatError } from '../errors.js';
import { fileSize } from './binary-file.js';

/** Elements per block and bytes per block of each dtype (GGUF Q8_0: f16 scale + 32 int8; Q4_0: f16 + 16 bytes). */
const BLOCK: Record<NativeDType, { elems: number; bytes: number }> = {
  f32: { elems: 1, bytes: 4 },
  f16: { elems: 1, bytes: 2 },
  bf16: { elems: 1, bytes: 2 },
  q8_0: { elems: 32, bytes: 34 },
  q4_0: { elems: 32, bytes: 18 },
  q4_z: { elems: 32, bytes: 20 },
  q8_z: { elems: 32, bytes: 36 },
};

export function tensorBytes(dtype: NativeDType, shape: number[]): number {
  const { elems, bytes } = BLOCK[dtype];
  return (shape.reduce((a, b) => a * b, 1) / elems) * bytes;
}

/** Canonical name → shape (row-major, outermost first) as native-types.ts defines them. */
export function expectedShapes(c: NativeModelConfig): Map<string, number[]> {
  const headDim = c.dim / c.nHeads;
  const kvDim = c.nKvHeads * headDim;
  const m = new Map<string, number[]>([
    ['tok_embeddings', [c.vocabSize, c.dim]],
    ['norm', [c.dim]],
  ]);
  if (!c.tiedEmbeddings) m.set('output', [c.vocabSize, c.dim]);
  for (let i = 0; i < c.nLayers; i++) {
    const p = `layers.${i}.`;
    m.set(`${p}attention_norm`, [c.dim]);
    m.set(`${p}wq`, [c.nHeads * headDim, c.dim]);
    m.set(`${p}wk`, [kvDim, c.dim]);
    m.set(`${p}wv`, [kvDim, c.dim]);
    m.set(`${p}wo`, [c.dim, c.nHeads * headDim]);
    m.set(`${p}ffn_norm`, [c.dim]);
    m.set(`${p}w1`, [c.hiddenDim, c.dim]);
    m.set(`${p}w2`, [c.dim, c.hiddenDim]);
    m.set(`${p}w3`, [c.hiddenDim, c.dim]);
  }
  return m;
}

export function checkConfig(file: string, c: NativeModelConfig): void {
  const ints = {
    dim: c.dim,
    hiddenDim: c.hiddenDim,
    nLayers: c.nLayers,
    nHeads: c.nHeads,
    nKvHeads: c.nKvHeads,
    vocabSize: c.vocabSize,
    maxSeqLen: c.maxSeqLen,
  };
  for (const [k, v] of Object.entries(ints)) {
    if (!Number.isInteger(v) || v <= 0 || v > 1 << 24) throw new ModelFormatError(file, `bad config: ${k} = ${v}`);
  }
  if (c.dim % c.nHeads !== 0)
    throw new ModelFormatError(file, `bad config: dim ${c.dim} is not a multiple of nHeads ${c.nHeads}`);
  if (c.nHeads % c.nKvHeads !== 0)
    throw new ModelFormatError(file, `bad config: nHeads ${c.nHeads} is not a multiple of nKvHeads ${c.nKvHeads}`);
  if ((c.dim / c.nHeads) % 2 !== 0)
    throw new ModelFormatError(file, `bad config: head size ${c.dim / c.nHeads} is odd (RoPE rotates pairs)`);
  if (!(c.ropeTheta > 0) || !(c.normEps > 0))
    throw new ModelFormatError(file, `bad config: ropeTheta ${c.ropeTheta}, normEps ${c.normEps}`);
}

/**
 * Throws ModelFormatError naming the file of the first missing, misshapen or out-of-range tensor.
 * `nameOf` turns a canonical name into the format's own, for messages.
 */
export function checkManifest(
  config: NativeModelConfig,
  files: string[],
  tensors: NativeTensorSpec[],
  nameOf = (n: string) => n,
): void {
  checkConfig(files[0]!, config);
  const sizes = files.map((f) => fileSize(f));
  const byName = new Map(tensors.map((t) => [t.name, t]));
  for (const [name, shape] of expectedShapes(config)) {
    const t = byName.get(name);
    if (!t) throw new ModelFormatError(files[0]!, `missing tensor ${nameOf(name)}`);
    const file = files[t.file]!;
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ModelFormatError(
        file,
        `inconsistent shape: tensor ${nameOf(name)} is [${t.shape}], the config implies [${shape}]`,
      );
    }
    if (t.dtype === 'gptq' || t.dtype === 'awq') continue; // parts checked by the reader (hf-quant.ts)
    const block = BLOCK[t.dtype].elems;
    if (t.shape[t.shape.length - 1]! % block !== 0) {
      throw new ModelFormatError(
        file,
        `inconsistent shape: tensor ${nameOf(name)} rows of ${t.shape.at(-1)} are not whole ${t.dtype} blocks of ${block}`,
      );
    }
    const end = t.offset + tensorBytes(t.dtype, t.shape);
    if (t.offset < 0 || end > sizes[t.file]!) {
      throw new ModelFormatError(
        file,
        `truncated: tensor ${nameOf(name)} spans bytes ${t.offset}..${end} but the file has ${sizes[t.file]}`,
      );
    }
  }
}
