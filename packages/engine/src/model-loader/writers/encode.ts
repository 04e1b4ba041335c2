/**
 * f32 values → the bytes of a file dtype: f32, f16 (round to nearest even), bf16, and GGUF's block
 * formats Q8_0 (per 32: f16 scale d = amax/127, 32 × int8 round(x/d)) and Q4_0 (per 32: f16 scale
 * d = max/-8 where max is the signed value of largest magnitude, 16 bytes of nibbles q = x/d + 8.5
 * clamped to 15; element i in the low nibble of byte i, element i+16 in its high nibble), as ggml does.
 */
import type { NativeDType } from '../../native/native-types.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++; // may carry into the exponent: still correct
  return sign | half;
}

export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function encodeTensor(values: Float32Array, dtype: NativeDType): Uint8Array {
  switch (dtype) {
    case 'f32':
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    case 'f16':
      return halves(values, f32ToF16Bits);
    case 'bf16':
      return halves(values, f32ToBf16Bits);
    case 'q8_0':
      return quantizeQ8_0(values);
    case 'q4_0':
      return quantizeQ4_0(values);
    case 'q4_z':
    case 'q8_z':
      throw new RangeError(
        'q4_z / q8_z are made at load from GPTQ/AWQ layers (gptq-quantize.ts), not encoded from floats',
      );
  }
}

function halves(values: Float32Array, conv: (x: number) => number): Uint8Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = conv(values[i]!);
  return new Uint8Array(out.buffer);
}

export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[b * 32 + i]!));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    view.setUint16(b * 34, f32ToF16Bits(d), true);
    for (let i = 0; i < 32; i++) {
      const v = x[b * 32 + i]! * id;
      view.setInt8(b * 34 + 2 + i, Math.sign(v) * Math.round(Math.abs(v))); // roundf: half away from zero
    }
  }
  return out;
}

export function quantizeQ4_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 18);
  const view = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    let amax = 0,
      max = 0;
    for (let i = 0; i < 32; i++) {
      const v = x[b * 32 + i]!;
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = max / -8;
    const id = d ? 1 / d : 0;
    view.setUint16(b * 18, f32ToF16Bits(d), true);
    for (let i = 0; i < 16; i++) {
      const lo = Math.min(15, Math.trunc(x[b * 32 + i]! * id + 8.5));
      const hi = Math.min(15, Math.trunc(x[b * 32 + 16 + i]! * id + 8.5));
      out[b * 18 + 2 + i] = lo | (hi << 4);
    }
  }
  return out;
}
