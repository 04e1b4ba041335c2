/**
 * safetensors: u64 header length N, N bytes of JSON { name: { dtype, shape, data_offsets: [begin, end] },
 * "__metadata__"?: {...} }, then the data; offsets are relative to byte 8 + N. Only the header is read.
 */
import { ModelFormatError } from '../errors.js';
import { fileSize, readBytesAt } from './binary-file.js';

export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte offset of the tensor in the file. */
  offset: number;
  bytes: number;
}

const DTYPE_BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

export function readSafetensorsHeader(file: string): SafetensorsEntry[] {
  const size = fileSize(file);
  const n = Number(readBytesAt(file, 0, 8, 'safetensors header length').readBigUInt64LE(0));
  if (n < 2 || n > 100 << 20 || 8 + n > size) {
    throw new ModelFormatError(
      file,
      n > size
        ? `truncated: header length ${n} exceeds the file (${size} bytes)`
        : `wrong magic: header length ${n} is not a safetensors header`,
    );
  }
  const text = readBytesAt(file, 8, n, 'safetensors header').toString('utf8');
  let header: Record<string, { dtype?: string; shape?: number[]; data_offsets?: [number, number] }>;
  try {
    header = JSON.parse(text);
  } catch {
    throw new ModelFormatError(file, 'wrong magic: the header is not JSON, not a safetensors file');
  }
  const base = 8 + n;
  return Object.entries(header)
    .filter(([k]) => k !== '__metadata__')
    .map(([name, e]) => {
      const { dtype, shape, data_offsets: off } = e ?? {};
      if (typeof dtype !== 'string' || !Array.isArray(shape) || !Array.isArray(off) || off.length !== 2) {
        throw new ModelFormatError(file, `bad header entry for ${name}`);
      }
      const width = DTYPE_BYTES[dtype];
      const numel = shape.reduce((a, b) => a * b, 1);
      if (width !== undefined && off[1] - off[0] !== numel * width) {
        throw new ModelFormatError(
          file,
          `inconsistent shape: ${name} is ${dtype}[${shape}] but spans ${off[1] - off[0]} bytes`,
        );
      }
      if (base + off[1] > size)
        throw new ModelFormatError(file, `truncated: ${name} ends at byte ${base + off[1]}, the file has ${size}`);
      return { name, dtype, shape, offset: base + off[0], bytes: off[1] - off[0] };
    });
}
