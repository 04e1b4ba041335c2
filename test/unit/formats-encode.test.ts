import { describe, expect, it } from 'vitest';
import {
  f32ToBf16Bits,
  f32ToF16Bits,
  quantizeQ4_0,
  quantizeQ8_0,
} from '../../packages/engine/src/model-loader/writers/encode.js';
import { Prng } from '../../packages/engine/src/model-loader/writers/random-tensors.js';
import { f16ToF32 } from '../fixtures/tensors.js';

describe('weight encoders', () => {
  it('f16: exact values, rounding to nearest even, subnormals, overflow', () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(-2)).toBe(0xc000);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(1e6)).toBe(0x7c00);
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001);
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    const rng = new Prng(9);
    for (let i = 0; i < 10000; i++) {
      const x = rng.normal() * 0.05;
      expect(Math.abs(f16ToF32(f32ToF16Bits(x)) - x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -11 + 2 ** -25);
    }
  });

  it('bf16 keeps the top 16 bits, rounded', () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(-0.5)).toBe(0xbf00);
  });

  it('Q8_0 and Q4_0 blocks dequantize close to the input', () => {
    const rng = new Prng(4);
    const x = Float32Array.from({ length: 64 }, () => rng.normal());
    const q8 = Buffer.from(quantizeQ8_0(x));
    const q4 = Buffer.from(quantizeQ4_0(x));
    expect([q8.length, q4.length]).toEqual([68, 36]);
    for (let b = 0; b < 2; b++) {
      const d8 = f16ToF32(q8.readUInt16LE(b * 34));
      const d4 = f16ToF32(q4.readUInt16LE(b * 18));
      for (let i = 0; i < 32; i++) {
        expect(Math.abs(d8 * q8.readInt8(b * 34 + 2 + i) - x[b * 32 + i]!)).toBeLessThanOrEqual(d8 / 2 + 1e-3);
        const nib = i < 16 ? q4[b * 18 + 2 + i]! & 0xf : q4[b * 18 + 2 + i - 16]! >> 4;
        expect(Math.abs(d4 * (nib - 8) - x[b * 32 + i]!)).toBeLessThanOrEqual(Math.abs(d4) / 2 + 1e-3);
      }
    }
  });
});
