// The RTN quantizer and the GPTQ/AWQ packers on plain data, against the layouts as AutoGPTQ and AutoAWQ
// write them (worked by hand from their pack loops, independently of the addon's unpacking).
import { describe, expect, it } from 'vitest';
import {
  dequantize,
  f16Value,
  packAwq,
  packGptq,
  quantizationConfig,
  quantizeLinear,
  type QuantizedLinear,
} from '../../packages/engine/src/model-loader/writers/gptq-quantize.js';

/** A layer with chosen quants: rows x cols, one group, zero z, scale 1. */
function layer(rows: number, cols: number, q: (n: number, k: number) => number, z: number): QuantizedLinear {
  return {
    rows,
    cols,
    groups: 1,
    q: Uint8Array.from({ length: rows * cols }, (_, i) => q(Math.floor(i / cols), i % cols)),
    zeros: new Uint16Array(rows).fill(z),
    scales: new Uint16Array(rows).fill(0x3c00),
    gIdx: new Int32Array(cols),
  };
}

describe('GPTQ / AWQ packing', () => {
  it("AWQ: output 8c + j at nibble [0,4,1,5,2,6,3,7][j] (AutoAWQ's order_map 0,2,4,6,1,3,5,7)", () => {
    const l = layer(8, 1, (n) => n, 3);
    const { qweight, qzeros } = packAwq(l);
    // nibbles from the lowest: outputs 0, 2, 4, 6, 1, 3, 5, 7
    expect(qweight[0]! >>> 0).toBe(0x75316420);
    expect(qzeros[0]! >>> 0).toBe(0x33333333);
  });

  it('GPTQ 4-bit: input j of a word at bits 4j, zeros stored minus one (v1) or as they are (gptq_v2)', () => {
    const l = layer(8, 8, (n, k) => (k + n) % 16, 9);
    const v1 = packGptq(l, { method: 'gptq', bits: 4, groupSize: -1 });
    expect(v1.qweight).toHaveLength(8); // (cols / 8, rows)
    expect(v1.qweight[0]! >>> 0).toBe(0x76543210); // output 0: inputs 0..7 hold 0..7
    expect(v1.qweight[1]! >>> 0).toBe(0x87654321);
    expect(v1.qzeros[0]! >>> 0).toBe(0x88888888);
    const v2 = packGptq(l, { method: 'gptq', bits: 4, groupSize: -1, checkpointFormat: 'gptq_v2' });
    expect(v2.qzeros[0]! >>> 0).toBe(0x99999999);
  });

  it('GPTQ 8-bit: four inputs per word', () => {
    const l = layer(4, 4, (n, k) => 16 * n + k, 128);
    const { qweight, qzeros } = packGptq(l, { method: 'gptq', bits: 8, groupSize: -1 });
    expect(qweight[2]! >>> 0).toBe(0x23222120);
    expect(qzeros[0]! >>> 0).toBe(0x7f7f7f7f);
  });

  it('RTN: values within half a step, ranges through 0, desc_act a permutation of whole groups', () => {
    const rows = 16,
      cols = 128;
    const w = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 5)));
    for (const scheme of [
      { method: 'gptq', bits: 4, groupSize: 32, sym: false },
      { method: 'gptq', bits: 4, groupSize: 64, sym: true, descAct: true },
      { method: 'gptq', bits: 8, groupSize: -1, sym: true },
      { method: 'awq', bits: 4, groupSize: 64 },
    ] as const) {
      const l = quantizeLinear(w, rows, cols, scheme, 7);
      const d = dequantize(l);
      for (let n = 0; n < rows; n++)
        for (let k = 0; k < cols; k++) {
          const s = f16Value(l.scales[l.gIdx[k]! * rows + n]!);
          // clipping at the top code can cost up to one step in the symmetric case
          expect(Math.abs(d[n * cols + k]! - w[n * cols + k]!)).toBeLessThanOrEqual(s * (scheme.sym ? 1 : 0.5) + 1e-6);
        }
      const counts = new Map<number, number>();
      for (const g of l.gIdx) counts.set(g, (counts.get(g) ?? 0) + 1);
      expect([...counts.values()].every((c) => c === (scheme.groupSize > 0 ? scheme.groupSize : cols))).toBe(true);
      if ('descAct' in scheme) expect([...l.gIdx].some((g, k) => g !== Math.floor(k / 64))).toBe(true);
    }
  });

  it('writes quantization_config as AutoGPTQ / AutoAWQ do', () => {
    expect(quantizationConfig({ method: 'awq', bits: 4, groupSize: 128 })).toMatchObject({
      quant_method: 'awq',
      version: 'gemm',
      zero_point: true,
    });
    expect(quantizationConfig({ method: 'gptq', bits: 4, groupSize: 32, sym: false, descAct: true })).toMatchObject({
      quant_method: 'gptq',
      sym: false,
      desc_act: true,
      checkpoint_format: 'gptq',
    });
  });
});
