/**
 * Pre-quantized Hugging Face checkpoints: config.json's quantization_config → the scheme, and each
 * linear layer's stored tensors (qweight, qzeros, scales, g_idx) → one packed NativeTensorSpec
 * ('gptq' / 'awq') that the addon repacks at load (native/src/core/weights-gptq.h). GPTQ 4/8-bit (any
 * group size that is a multiple of 32 or per channel, desc_act, sym or not, v1 or gptq_v2) and AWQ
 * 4-bit GEMM are read; anything else (bitsandbytes, fp8, AWQ GEMV, ...) is refused naming what is.
 * Shapes, element types, missing parts and g_idx values are checked here, so a bad checkpoint fails
 * with a ModelFormatError naming the tensor before the addon maps a byte.
 */
import type { NativePackedPart, NativeTensorSpec } from '../native/native-types.js';
import { ModelFormatError, UnsupportedModelError } from '../errors.js';
import { readBytesAt } from './binary-file.js';
import type { SafetensorsEntry } from './safetensors-file.js';

export type Quantization = 'gptq' | 'awq';

export const SUPPORTED_QUANTIZATION =
  'supported: unquantized f32/f16/bf16, GPTQ (4- or 8-bit, symmetric or not; group size a multiple of 32 or per channel; desc_act), AWQ (4-bit GEMM), GGUF Q8_0/Q4_0';

export interface HfQuantScheme {
  method: Quantization;
  bits: 4 | 8;
  groupSize: number;
  zeroOffset: number;
}

/** The checkpoint's scheme, or undefined when it is not quantized; throws for what is not read. */
export function readQuantScheme(
  file: string,
  raw: Record<string, any>,
  wanted?: Quantization,
): HfQuantScheme | undefined {
  const qc = raw.quantization_config as Record<string, any> | undefined;
  if (qc == null) {
    if (wanted)
      throw new UnsupportedModelError(
        file,
        `quantization '${wanted}' was asked for but config.json has no quantization_config`,
      );
    return undefined;
  }
  const method = String(
    qc.quant_method ?? (qc.load_in_4bit || qc.load_in_8bit ? 'bitsandbytes' : 'unknown'),
  ).toLowerCase();
  if (method === 'bitsandbytes') {
    const kind = qc.bnb_4bit_quant_type ?? (qc.load_in_8bit ? 'int8' : '4-bit');
    throw new UnsupportedModelError(file, `bitsandbytes ${kind} checkpoints (${SUPPORTED_QUANTIZATION})`);
  }
  if (method !== 'gptq' && method !== 'awq')
    throw new UnsupportedModelError(file, `quantization method '${method}' (${SUPPORTED_QUANTIZATION})`);
  if (wanted && wanted !== method)
    throw new UnsupportedModelError(file, `quantization '${wanted}' was asked for but the checkpoint is ${method}`);
  const bits = qc.bits ?? qc.w_bit;
  const groupSize = qc.group_size ?? qc.q_group_size ?? -1;
  if (!(bits === 4 || (bits === 8 && method === 'gptq')))
    throw new UnsupportedModelError(file, `${method} with ${bits} bits (${SUPPORTED_QUANTIZATION})`);
  if (typeof groupSize !== 'number' || (groupSize !== -1 && (groupSize <= 0 || groupSize % 32 !== 0)))
    throw new UnsupportedModelError(file, `${method} group size ${groupSize} (multiples of 32, or -1 per channel)`);
  if (method === 'awq') {
    const version = String(qc.version ?? 'gemm').toLowerCase();
    if (version !== 'gemm') throw new UnsupportedModelError(file, `AWQ version '${version}' (the GEMM layout is read)`);
    if (qc.zero_point === false) throw new UnsupportedModelError(file, 'AWQ without zero points');
    return { method, bits, groupSize, zeroOffset: 0 };
  }
  const format = String(qc.checkpoint_format ?? 'gptq');
  if (format !== 'gptq' && format !== 'gptq_v2')
    throw new UnsupportedModelError(file, `GPTQ checkpoint_format '${format}' (gptq, gptq_v2)`);
  return { method, bits, groupSize, zeroOffset: format === 'gptq' ? 1 : 0 };
}

const PARTS = ['qweight', 'qzeros', 'scales', 'g_idx'] as const;
const FLOATS: Record<string, NativePackedPart['dtype']> = { F16: 'f16', BF16: 'bf16', F32: 'f32' };

/** True for the stored tensors of a packed layer (…qweight, …qzeros, …scales, …g_idx). */
export function isPackedPart(name: string): boolean {
  return PARTS.some((p) => name.endsWith(`.${p}`));
}

export interface LocatedEntry {
  entry: SafetensorsEntry;
  file: number;
}

/**
 * The packed tensor of the layer whose weight would be `hfWeightName` (…proj.weight), canonical name
 * `canonical`, logical shape (rows = outputs, cols = inputs).
 */
export function packedTensor(
  files: string[],
  byName: Map<string, LocatedEntry>,
  scheme: HfQuantScheme,
  canonical: string,
  hfWeightName: string,
  shape: [number, number],
): NativeTensorSpec {
  const prefix = hfWeightName.slice(0, -'.weight'.length);
  const [rows, cols] = shape;
  const G = scheme.groupSize <= 0 ? 1 : Math.ceil(cols / scheme.groupSize);
  const p = 32 / scheme.bits;
  const awq = scheme.method === 'awq';
  const what = `${scheme.method.toUpperCase()} ${scheme.bits}-bit, group size ${scheme.groupSize <= 0 ? 'per channel' : scheme.groupSize}`;
  const part = (suffix: string, want: number[], float: boolean, optional = false): NativePackedPart | undefined => {
    const name = `${prefix}.${suffix}`;
    const at = byName.get(name);
    if (!at) {
      if (optional) return undefined;
      throw new ModelFormatError(files[0]!, `missing tensor ${name} (a ${what} layer has qweight, qzeros and scales)`);
    }
    const { entry, file } = at;
    const dtype = float ? FLOATS[entry.dtype] : entry.dtype === 'I32' ? 'i32' : undefined;
    if (!dtype)
      throw new ModelFormatError(
        files[file]!,
        `tensor ${name} is ${entry.dtype}, expected ${float ? 'F16, BF16 or F32' : 'I32'}`,
      );
    if (entry.shape.length !== want.length || entry.shape.some((d, i) => d !== want[i]))
      throw new ModelFormatError(
        files[file]!,
        `inconsistent shape: tensor ${name} is [${entry.shape}], expected [${want}] (${what}, layer ${rows}x${cols})`,
      );
    return { name, file, offset: entry.offset, dtype, shape: entry.shape };
  };
  if (cols % p !== 0 || rows % p !== 0)
    throw new ModelFormatError(
      files[0]!,
      `inconsistent shape: ${prefix} (${rows}x${cols}) is not whole int32 words of ${p}`,
    );
  const qweight = part('qweight', awq ? [cols, rows / 8] : [cols / p, rows], false)!;
  const qzeros = part('qzeros', [G, rows / p], false)!;
  const scales = part('scales', [G, rows], true)!;
  const gIdx = awq ? undefined : part('g_idx', [cols], false, true);
  if (gIdx) checkGIdx(files[gIdx.file]!, gIdx, G);
  return {
    name: canonical,
    file: qweight.file,
    offset: qweight.offset,
    dtype: scheme.method,
    shape: [rows, cols],
    quant: {
      bits: scheme.bits,
      groupSize: scheme.groupSize,
      zeroOffset: scheme.zeroOffset,
      qweight,
      qzeros,
      scales,
      ...(gIdx ? { gIdx } : {}),
    },
  };
}

/** Every g_idx value names a group that exists (the addon checks again; this names the file). */
function checkGIdx(file: string, part: NativePackedPart, groups: number): void {
  const buf = readBytesAt(file, part.offset, part.shape[0]! * 4, part.name);
  for (let k = 0; k < part.shape[0]!; k++) {
    const g = buf.readInt32LE(4 * k);
    if (g < 0 || g >= groups)
      throw new ModelFormatError(file, `tensor ${part.name} maps input ${k} to group ${g}, outside 0..${groups - 1}`);
  }
}
