/**
 * Round-to-nearest quantization of one linear layer into GPTQ's and AWQ's Hugging Face layouts — the
 * layouts exactly, not their algorithms (no Hessian, no activation-aware scaling): enough to make
 * checkpoints that load through the same tensors real ones have. Pure; weights are (rows = outputs,
 * cols = inputs) row-major f32, as the writers' WeightSource yields them.
 *
 *   GPTQ: qweight int32 (cols / p, rows), p = 32 / bits values per word along the inputs (value j at bits
 *         j*bits); qzeros int32 (G, rows / p) along the outputs, storing zero - 1 in the v1 format
 *         ('gptq', what vLLM reads) or zero in 'gptq_v2'; scales f16 (G, rows); g_idx int32 (cols).
 *   AWQ:  qweight int32 (cols, rows / 8), output 8c + j at nibble AWQ_NIBBLE[j]; qzeros int32 (G, rows / 8)
 *         the same; scales f16 (G, rows).
 *   value = scale * (q - zero). Symmetric (GPTQ's quantizer): zero = 2^(bits-1), scale = 2 max|w| /
 *   (2^bits - 1). Asymmetric: scale = (max - min) / (2^bits - 1), zero = round(-min / scale), kept >= 1
 *   in v1, whose stored zero - 1 must not go negative. Each range includes 0.
 *   desc_act: inputs are taken in a seeded random "activation order" and grouped in that order, so
 *   g_idx is a real permutation of groups (GPTQ's act order puts inputs by Hessian diagonal instead).
 */
import { f32ToF16Bits } from './encode.js';

export type QuantMethod = 'gptq' | 'awq';

export interface QuantScheme {
  method: QuantMethod;
  /** 4 (GPTQ, AWQ) or 8 (GPTQ). */
  bits: 4 | 8;
  /** Inputs per group, a multiple of 32; -1 for one group per output over all inputs (GPTQ only). */
  groupSize: number;
  /** GPTQ: zero points fixed at the midpoint. AWQ is always asymmetric. Default true for GPTQ. */
  sym?: boolean;
  /**
   * GPTQ: act-order groups (g_idx a permutation), one order per input (q|k|v share one, gate|up one) as
   * GPTQ's Hessians make them; 'per-layer': every layer its own. Default false.
   */
  descAct?: boolean | 'per-layer';
  /** GPTQ: 'gptq' (v1, zero - 1 stored; default) or 'gptq_v2'. */
  checkpointFormat?: 'gptq' | 'gptq_v2';
}

export interface QuantizedLinear {
  rows: number;
  cols: number;
  groups: number;
  /** (rows, cols) quants in input order, 0 .. 2^bits - 1. */
  q: Uint8Array;
  /** (groups, rows) zero points as used in value = scale * (q - zero). */
  zeros: Uint16Array;
  /** (groups, rows) scales as f16 bits. */
  scales: Uint16Array;
  /** (cols) the group of each input. */
  gIdx: Int32Array;
}

export const AWQ_NIBBLE = [0, 4, 1, 5, 2, 6, 3, 7] as const;

export function groupsOf(scheme: QuantScheme, cols: number): number {
  return scheme.groupSize <= 0 ? 1 : Math.ceil(cols / scheme.groupSize);
}

export function quantizeLinear(
  w: Float32Array,
  rows: number,
  cols: number,
  scheme: QuantScheme,
  seed = 0,
): QuantizedLinear {
  const bits = scheme.bits;
  const maxq = (1 << bits) - 1;
  const sym = scheme.method === 'gptq' && scheme.sym !== false;
  const v1 = scheme.method === 'gptq' && scheme.checkpointFormat !== 'gptq_v2';
  const G = groupsOf(scheme, cols);
  const gIdx = new Int32Array(cols);
  const order = Int32Array.from({ length: cols }, (_, i) => i);
  if (scheme.descAct && scheme.groupSize > 0) shuffle(order, seed);
  for (let j = 0; j < cols; j++) gIdx[order[j]!] = scheme.groupSize > 0 ? Math.floor(j / scheme.groupSize) : 0;
  const q = new Uint8Array(rows * cols);
  const zeros = new Uint16Array(G * rows);
  const scales = new Uint16Array(G * rows);
  const lo = new Float64Array(G),
    hi = new Float64Array(G);
  for (let n = 0; n < rows; n++) {
    lo.fill(0);
    hi.fill(0); // the range includes 0, as GPTQ's quantizer makes it
    for (let k = 0; k < cols; k++) {
      const g = gIdx[k]!,
        v = w[n * cols + k]!;
      if (v < lo[g]!) lo[g] = v;
      if (v > hi[g]!) hi[g] = v;
    }
    for (let g = 0; g < G; g++) {
      let scale: number, zero: number;
      if (sym) {
        const amax = Math.max(-lo[g]!, hi[g]!);
        scale = (2 * amax) / maxq;
        zero = (maxq + 1) / 2;
      } else {
        scale = (hi[g]! - lo[g]!) / maxq;
        zero = scale ? Math.round(-lo[g]! / scale) : 0;
        zero = Math.min(maxq, Math.max(v1 ? 1 : 0, zero));
      }
      const bitsF16 = f32ToF16Bits(scale);
      scales[g * rows + n] = bitsF16;
      zeros[g * rows + n] = zero;
    }
    for (let k = 0; k < cols; k++) {
      const g = gIdx[k]!;
      const s = f16Value(scales[g * rows + n]!);
      const z = zeros[g * rows + n]!;
      const v = s ? Math.round(w[n * cols + k]! / s) + z : z;
      q[n * cols + k] = Math.min(maxq, Math.max(0, v));
    }
  }
  return { rows, cols, groups: G, q, zeros, scales, gIdx };
}

/** The f32 values the packed layer stands for, (rows, cols) in input order: f16(scale) * (q - zero). */
export function dequantize(l: QuantizedLinear): Float32Array {
  const out = new Float32Array(l.rows * l.cols);
  for (let n = 0; n < l.rows; n++)
    for (let k = 0; k < l.cols; k++) {
      const at = l.gIdx[k]! * l.rows + n;
      out[n * l.cols + k] = Math.fround(f16Value(l.scales[at]!) * (l.q[n * l.cols + k]! - l.zeros[at]!));
    }
  return out;
}

/** GPTQ's qweight (cols / p, rows) and qzeros (G, rows / p) as int32 words. */
export function packGptq(l: QuantizedLinear, scheme: QuantScheme): { qweight: Int32Array; qzeros: Int32Array } {
  const bits = scheme.bits,
    p = 32 / bits,
    mask = (1 << bits) - 1;
  const offset = scheme.checkpointFormat === 'gptq_v2' ? 0 : 1;
  const qweight = new Int32Array((l.cols / p) * l.rows);
  for (let kk = 0; kk < l.cols / p; kk++)
    for (let n = 0; n < l.rows; n++) {
      let word = 0;
      for (let j = 0; j < p; j++) word |= (l.q[n * l.cols + kk * p + j]! & mask) << (bits * j);
      qweight[kk * l.rows + n] = word;
    }
  const qzeros = new Int32Array(l.groups * (l.rows / p));
  for (let g = 0; g < l.groups; g++)
    for (let c = 0; c < l.rows / p; c++) {
      let word = 0;
      for (let j = 0; j < p; j++) word |= ((l.zeros[g * l.rows + c * p + j]! - offset) & mask) << (bits * j);
      qzeros[g * (l.rows / p) + c] = word;
    }
  return { qweight, qzeros };
}

/** AWQ's qweight (cols, rows / 8) and qzeros (G, rows / 8), nibbles in AutoAWQ's order. */
export function packAwq(l: QuantizedLinear): { qweight: Int32Array; qzeros: Int32Array } {
  const c8 = l.rows / 8;
  const qweight = new Int32Array(l.cols * c8);
  for (let k = 0; k < l.cols; k++)
    for (let c = 0; c < c8; c++) {
      let word = 0;
      for (let j = 0; j < 8; j++) word |= l.q[(8 * c + j) * l.cols + k]! << (4 * AWQ_NIBBLE[j]!);
      qweight[k * c8 + c] = word;
    }
  const qzeros = new Int32Array(l.groups * c8);
  for (let g = 0; g < l.groups; g++)
    for (let c = 0; c < c8; c++) {
      let word = 0;
      for (let j = 0; j < 8; j++) word |= l.zeros[g * l.rows + 8 * c + j]! << (4 * AWQ_NIBBLE[j]!);
      qzeros[g * c8 + c] = word;
    }
  return { qweight, qzeros };
}

/** The quantization_config of config.json for a scheme, as AutoGPTQ / AutoAWQ write it. */
export function quantizationConfig(scheme: QuantScheme): Record<string, unknown> {
  if (scheme.method === 'awq')
    return { quant_method: 'awq', bits: scheme.bits, group_size: scheme.groupSize, zero_point: true, version: 'gemm' };
  return {
    quant_method: 'gptq',
    bits: scheme.bits,
    group_size: scheme.groupSize,
    desc_act: scheme.descAct === true || scheme.descAct === 'per-layer',
    sym: scheme.sym !== false,
    checkpoint_format: scheme.checkpointFormat ?? 'gptq',
    damp_percent: 0.01,
    true_sequential: true,
  };
}

const hf32 = new Float32Array(1);
/** f16 bits → the value (as a float, exactly). */
export function f16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1,
    e = (h >> 10) & 0x1f,
    m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  hf32[0] = s * (1 + m / 1024) * 2 ** (e - 15);
  return hf32[0]!;
}

/** Seeded Fisher–Yates (mulberry32). */
function shuffle(a: Int32Array, seed: number): void {
  let state = seed >>> 0;
  const next = () => {
    let t = (state = (state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
}
