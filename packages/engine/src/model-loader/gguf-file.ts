/**
 * GGUF v2/v3 container parsing: header, metadata key/values (every value type, arrays included) and
 * tensor infos. Reads only the header bytes; tensor data starts at the next multiple of
 * general.alignment (default 32) after the tensor infos.
 *
 * Layout: "GGUF" u32 version, u64 n_tensors, u64 n_kv, then n_kv × (string key, u32 type, value),
 * then n_tensors × (string name, u32 n_dims, u64 dims[n_dims] innermost first, u32 ggml_type, u64 offset).
 */
import { ModelFormatError, UnsupportedModelError } from '../errors.js';
import { FileCursor } from './binary-file.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32

export type GgufValue = number | bigint | boolean | string | GgufArray;
export type GgufArray =
  | string[]
  | boolean[]
  | GgufArray[]
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array;

export interface GgufTensorInfo {
  name: string;
  /** As stored: innermost (contiguous) dimension first. */
  dims: number[];
  /** ggml_type number. */
  type: number;
  /** Absolute byte offset in the file (data start + relative offset). */
  offset: number;
}

export interface GgufFile {
  file: string;
  version: number;
  size: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  dataOffset: number;
  alignment: number;
}

const enum T {
  U8,
  I8,
  U16,
  I16,
  U32,
  I32,
  F32,
  BOOL,
  STRING,
  ARRAY,
  U64,
  I64,
  F64,
}
/** Bytes per element of fixed-size value types (used to bound array counts before allocating). */
const FIXED_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

export function readGgufFile(file: string): GgufFile {
  const c = new FileCursor(file);
  try {
    if (c.size < 4 || c.u32('magic') !== GGUF_MAGIC) throw new ModelFormatError(file, 'wrong magic: not a GGUF file');
    const version = c.u32('version');
    if (version === 0x02000000 || version === 0x03000000) throw new UnsupportedModelError(file, 'big-endian GGUF');
    if (version !== 2 && version !== 3)
      throw new UnsupportedModelError(file, `GGUF version ${version} (2 and 3 are read)`);
    const nTensors = c.u64n('tensor count');
    const nKv = c.u64n('metadata count');
    // every tensor info / kv needs at least 8 bytes: reject absurd counts before looping
    if (nTensors * 8 > c.remaining() || nKv * 8 > c.remaining())
      throw new ModelFormatError(file, `truncated: header claims ${nTensors} tensors and ${nKv} metadata entries`);
    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < nKv; i++) {
      const key = readString(c, 'metadata key');
      metadata.set(key, readValue(c, c.u32(`type of ${key}`), key));
    }
    const infos = Array.from({ length: nTensors }, () => readTensorInfo(c));
    const alignment = Number(metadata.get('general.alignment') ?? 32);
    if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0)
      throw new ModelFormatError(file, `bad general.alignment ${alignment}`);
    const dataOffset = Math.ceil(c.pos / alignment) * alignment;
    const tensors = infos.map((t) => ({ ...t, offset: dataOffset + t.offset }));
    return { file, version, size: c.size, metadata, tensors, dataOffset, alignment };
  } finally {
    c.close();
  }
}

function readString(c: FileCursor, what: string): string {
  const len = c.u64n(`length of ${what}`);
  if (len > c.remaining()) throw new ModelFormatError(c.file, `truncated: ${what} of ${len} bytes at byte ${c.pos}`);
  return c.bytes(len, what).toString('utf8');
}

function readTensorInfo(c: FileCursor): GgufTensorInfo {
  const name = readString(c, 'tensor name');
  const nDims = c.u32(`dims of ${name}`);
  if (nDims < 1 || nDims > 4)
    throw new ModelFormatError(c.file, `tensor ${name} has ${nDims} dimensions (1–4 allowed)`);
  const dims = Array.from({ length: nDims }, () => c.u64n(`shape of ${name}`));
  return { name, dims, type: c.u32(`type of ${name}`), offset: c.u64n(`offset of ${name}`) };
}

function readValue(c: FileCursor, type: number, key: string): GgufValue {
  switch (type) {
    case T.U8:
      return c.u8(key);
    case T.I8:
      return c.i8(key);
    case T.U16:
      return c.u16(key);
    case T.I16:
      return c.i16(key);
    case T.U32:
      return c.u32(key);
    case T.I32:
      return c.i32(key);
    case T.F32:
      return c.f32(key);
    case T.BOOL:
      return c.u8(key) !== 0;
    case T.STRING:
      return readString(c, key);
    case T.ARRAY:
      return readArray(c, key);
    case T.U64:
      return narrow(c.u64(key));
    case T.I64:
      return narrow(c.i64(key));
    case T.F64:
      return c.f64(key);
    default:
      throw new ModelFormatError(c.file, `metadata ${key} has unknown value type ${type}`);
  }
}

/** 64-bit integers become numbers when exact, else stay bigint. */
function narrow(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function readArray(c: FileCursor, key: string): GgufArray {
  const type = c.u32(`element type of ${key}`);
  const n = c.u64n(`length of ${key}`);
  const size = FIXED_SIZE[type];
  if (n * (size ?? 8) > c.remaining())
    throw new ModelFormatError(c.file, `truncated: array ${key} of ${n} elements at byte ${c.pos}`);
  if (size !== undefined && type !== T.BOOL) return typedArray(type, c.bytes(n * size, key), n);
  const out: GgufValue[] = [];
  for (let i = 0; i < n; i++) out.push(readValue(c, type, key));
  return out as GgufArray;
}

function typedArray(type: number, bytes: Buffer, n: number): GgufArray {
  const copy = new Uint8Array(bytes).buffer; // aligned copy; the cursor's window is reused
  switch (type) {
    case T.U8:
      return new Uint8Array(copy, 0, n);
    case T.I8:
      return new Int8Array(copy, 0, n);
    case T.U16:
      return new Uint16Array(copy, 0, n);
    case T.I16:
      return new Int16Array(copy, 0, n);
    case T.U32:
      return new Uint32Array(copy, 0, n);
    case T.I32:
      return new Int32Array(copy, 0, n);
    case T.F32:
      return new Float32Array(copy, 0, n);
    case T.U64:
      return new BigUint64Array(copy, 0, n);
    case T.I64:
      return new BigInt64Array(copy, 0, n);
    default:
      return new Float64Array(copy, 0, n);
  }
}
