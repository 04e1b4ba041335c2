/**
 * Writes a GGUF v3 llama model: metadata (llama.* hyperparameters, tokenizer.ggml.* vocabulary),
 * tensor infos with dims innermost first, data aligned to 32. q/k stay in the interleaved RoPE layout
 * (llama.cpp's convention). 1-D norm weights are always F32, as llama.cpp writes them.
 */
import type { NativeModelConfig } from '../../native/native-types.js';
import { GGUF_MAGIC } from '../gguf-file.js';
import { ggufName } from '../gguf-reader.js';
import { expectedShapes, tensorBytes } from '../manifest.js';
import { encodeTensor } from './encode.js';
import { FileSink } from './file-sink.js';
import type { WeightSource } from './random-tensors.js';
import type { SyntheticVocab } from './synthetic-vocab.js';

export type GgufWriteDType = 'f32' | 'f16' | 'q8_0' | 'q4_0';
const GGML_TYPE: Record<GgufWriteDType, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 8 };
const ALIGNMENT = 32;

/** A metadata value with its GGUF type: scalars, strings, and arrays of one element type. */
export type GgufKv =
  | { key: string; type: 'u32' | 'i32' | 'f32' | 'bool' | 'string'; value: number | boolean | string }
  | { key: string; type: 'array'; elem: 'string' | 'f32' | 'i32'; value: ArrayLike<number> | string[] };

const TYPE_ID = { u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9 } as const;

/** Little-endian byte builder for the header. */
class Bytes {
  parts: Buffer[] = [];
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.parts.push(b);
  }
  i32(v: number) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.parts.push(b);
  }
  f32(v: number) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.parts.push(b);
  }
  u64(v: number) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.parts.push(b);
  }
  str(s: string) {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.parts.push(b);
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function writeKv(out: Bytes, kv: GgufKv): void {
  out.str(kv.key);
  out.u32(TYPE_ID[kv.type]);
  if (kv.type === 'array') {
    out.u32(TYPE_ID[kv.elem]);
    out.u64(kv.value.length);
    for (let i = 0; i < kv.value.length; i++) {
      const v = kv.value[i]!;
      if (kv.elem === 'string') out.str(v as string);
      else if (kv.elem === 'f32') out.f32(v as number);
      else out.i32(v as number);
    }
  } else if (kv.type === 'string') out.str(kv.value as string);
  else if (kv.type === 'bool') out.parts.push(Buffer.of(kv.value ? 1 : 0));
  else if (kv.type === 'f32') out.f32(kv.value as number);
  else if (kv.type === 'i32') out.i32(kv.value as number);
  else out.u32(kv.value as number);
}

export function llamaMetadata(c: NativeModelConfig, vocab: SyntheticVocab, name: string): GgufKv[] {
  return [
    { key: 'general.architecture', type: 'string', value: 'llama' },
    { key: 'general.name', type: 'string', value: name },
    { key: 'general.alignment', type: 'u32', value: ALIGNMENT },
    { key: 'llama.context_length', type: 'u32', value: c.maxSeqLen },
    { key: 'llama.embedding_length', type: 'u32', value: c.dim },
    { key: 'llama.feed_forward_length', type: 'u32', value: c.hiddenDim },
    { key: 'llama.block_count', type: 'u32', value: c.nLayers },
    { key: 'llama.attention.head_count', type: 'u32', value: c.nHeads },
    { key: 'llama.attention.head_count_kv', type: 'u32', value: c.nKvHeads },
    { key: 'llama.rope.dimension_count', type: 'u32', value: c.dim / c.nHeads },
    { key: 'llama.rope.freq_base', type: 'f32', value: c.ropeTheta },
    { key: 'llama.attention.layer_norm_rms_epsilon', type: 'f32', value: c.normEps },
    { key: 'tokenizer.ggml.model', type: 'string', value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: 'array', elem: 'string', value: vocab.pieces },
    { key: 'tokenizer.ggml.scores', type: 'array', elem: 'f32', value: vocab.scores },
    { key: 'tokenizer.ggml.token_type', type: 'array', elem: 'i32', value: vocab.types },
    { key: 'tokenizer.ggml.bos_token_id', type: 'u32', value: 1 },
    { key: 'tokenizer.ggml.eos_token_id', type: 'u32', value: 2 },
    { key: 'tokenizer.ggml.unknown_token_id', type: 'u32', value: 0 },
  ];
}

export async function writeGguf(
  file: string,
  config: NativeModelConfig,
  weights: WeightSource,
  metadata: GgufKv[],
  dtype: GgufWriteDType = 'f32',
): Promise<void> {
  const tensors = [...expectedShapes(config)].map(([canonical, shape]) => {
    const t = shape.length === 1 ? 'f32' : dtype;
    return { canonical, shape, dtype: t, bytes: tensorBytes(t, shape) };
  });
  const head = new Bytes();
  head.u32(GGUF_MAGIC);
  head.u32(3);
  head.u64(tensors.length);
  head.u64(metadata.length);
  for (const kv of metadata) writeKv(head, kv);
  let offset = 0;
  for (const t of tensors) {
    head.str(ggufName(t.canonical));
    head.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) head.u64(d);
    head.u32(GGML_TYPE[t.dtype]);
    head.u64(offset);
    offset += Math.ceil(t.bytes / ALIGNMENT) * ALIGNMENT;
  }
  const sink = await FileSink.create(file);
  try {
    await sink.write(head.done());
    for (const t of tensors) {
      await sink.pad(ALIGNMENT);
      for (const chunk of weights.chunks(t.canonical, t.shape)) await sink.write(encodeTensor(chunk, t.dtype));
    }
  } finally {
    await sink.close();
  }
}
