/**
 * References of a GPTQ/AWQ checkpoint's own weights, for native-gptq.test.ts: the checkpoint's manifest
 * with every packed layer replaced by a tensor in a file of our own, rebuilt from the writer's
 * quantizer (quantizeCanonical, same weights and seed):
 *  - 'f32': the dequantized values f16(scale) * (q - zero), in input order;
 *  - 'q8_0': the same values as Q8_0 blocks (d = the group's scale, qs = q - zero, which fits int8 for
 *    4-bit and symmetric 8-bit), so the engine's int8 kernels see the same integers and the same
 *    activation quantization — logits must then agree to the last bits (not for desc_act, whose
 *    activations are quantized in act order).
 */
import { writeFileSync } from 'node:fs';
import type { ModelSpec } from '../../packages/engine/src/model-loader/index.js';
import type { WeightSource } from '../../packages/engine/src/model-loader/writers/random-tensors.js';
import { dequantize, type QuantScheme } from '../../packages/engine/src/model-loader/writers/gptq-quantize.js';
import { quantizeCanonical } from '../../packages/engine/src/model-loader/writers/quantized-writer.js';
import type { NativeLoadOptions, NativeTensorSpec } from '../../packages/engine/src/native/native-types.js';

export function referenceManifest(
  spec: ModelSpec,
  weights: WeightSource,
  scheme: QuantScheme,
  seed: number,
  kind: 'f32' | 'q8_0',
  file: string,
): NativeLoadOptions {
  const chunks: Buffer[] = [];
  let at = 0;
  const tensors: NativeTensorSpec[] = spec.tensors.map((t) => {
    if (t.dtype !== 'gptq' && t.dtype !== 'awq') return t;
    const l = quantizeCanonical(weights, t.name, t.shape, scheme, seed);
    const bytes = kind === 'f32' ? Buffer.from(dequantize(l).buffer) : q8Blocks(l);
    chunks.push(bytes);
    const out: NativeTensorSpec = { name: t.name, file: spec.files.length, offset: at, dtype: kind, shape: t.shape };
    at += bytes.length;
    return out;
  });
  writeFileSync(file, Buffer.concat(chunks));
  return { config: spec.config, files: [...spec.files, file], tensors };
}

function q8Blocks(l: ReturnType<typeof quantizeCanonical>): Buffer {
  const nb = l.cols / 32;
  const out = Buffer.alloc(l.rows * nb * 34);
  for (let n = 0; n < l.rows; n++)
    for (let b = 0; b < nb; b++) {
      const at = (n * nb + b) * 34;
      const g = l.gIdx[b * 32]!;
      out.writeUInt16LE(l.scales[g * l.rows + n]!, at);
      for (let i = 0; i < 32; i++) {
        const k = b * 32 + i;
        if (l.gIdx[k] !== g) throw new Error('q8_0 reference: a block spans two groups (desc_act?)');
        out.writeInt8(l.q[n * l.cols + k]! - l.zeros[g * l.rows + n]!, at + 2 + i);
      }
    }
  return out;
}
