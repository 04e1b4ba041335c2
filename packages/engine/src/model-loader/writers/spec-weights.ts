/**
 * A WeightSource over a model already on disk (its ModelSpec): each tensor read from its file and
 * widened to f32 (f32, f16, bf16). Rows come as the file stores them — for a Hugging Face checkpoint
 * already in the half-split RoPE order — so `permuteHalf` is ignored.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { ModelSpec } from '../model-spec.js';
import { f16Value } from './gptq-quantize.js';
import type { WeightSource } from './random-tensors.js';

export class SpecWeights implements WeightSource {
  constructor(private readonly spec: ModelSpec) {}

  *chunks(name: string, shape: number[]): Generator<Float32Array> {
    const t = this.spec.tensors.find((x) => x.name === name);
    if (!t) throw new Error(`${this.spec.path}: no tensor ${name}`);
    const n = shape.reduce((a, b) => a * b, 1);
    const width = t.dtype === 'f32' ? 4 : t.dtype === 'f16' || t.dtype === 'bf16' ? 2 : 0;
    if (!width) throw new Error(`${this.spec.path}: tensor ${name} is ${t.dtype}, not a float type`);
    const buf = Buffer.alloc(n * width);
    const fd = openSync(this.spec.files[t.file]!, 'r');
    try {
      readSync(fd, buf, 0, buf.length, t.offset);
    } finally {
      closeSync(fd);
    }
    const out = new Float32Array(n);
    const u32 = new Uint32Array(1);
    const f32 = new Float32Array(u32.buffer);
    for (let i = 0; i < n; i++) {
      if (t.dtype === 'f32') out[i] = buf.readFloatLE(4 * i);
      else if (t.dtype === 'f16') out[i] = f16Value(buf.readUInt16LE(2 * i));
      else {
        u32[0] = buf.readUInt16LE(2 * i) << 16;
        out[i] = f32[0]!;
      }
    }
    yield out;
  }
}
