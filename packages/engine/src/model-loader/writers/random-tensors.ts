/**
 * Seeded random weights, generated in row chunks so a model of any size streams to disk in bounded
 * memory. Every tensor has its own PRNG stream keyed by (seed, canonical name), so its values do not
 * depend on the order a format writes tensors in: the three writers produce the same model.
 */
import type { NativeModelConfig } from '../../native/native-types.js';

export interface RandomWeightsOptions {
  seed: number;
  /** Standard deviation of matrix entries. Default 0.02 (keeps activations finite at any depth). */
  std?: number;
}

/** Where writers get tensor values: canonical name and shape → row-major f32 chunks of whole rows. */
export interface WeightSource {
  /** With `permuteHalf`, q/k rows come in Hugging Face's half-split RoPE order. */
  chunks(name: string, shape: number[], permuteHalf?: boolean): Iterable<Float32Array>;
}

/** Rows per chunk aim at ~1M floats (4 MB). */
const CHUNK_ELEMS = 1 << 20;

export class RandomWeights implements WeightSource {
  private readonly std: number;
  constructor(
    readonly config: NativeModelConfig,
    private readonly options: RandomWeightsOptions,
  ) {
    this.std = options.std ?? 0.02;
  }

  /**
   * Yields the tensor's values row-major in chunks of whole rows. With `permuteHalf`, q/k rows are
   * reordered per head from the interleaved RoPE layout to Hugging Face's half-split one:
   * half row h*hd + j*hd/2 + i ← interleaved row h*hd + 2i + j (j ∈ {0,1}).
   */
  *chunks(name: string, shape: number[], permuteHalf = false): Generator<Float32Array> {
    const rng = new Prng(hashSeed(this.options.seed, name));
    const cols = shape.at(-1)!;
    const rows = shape.length === 1 ? 1 : shape[0]!;
    const isNorm = shape.length === 1;
    const headDim = this.config.dim / this.config.nHeads;
    const perChunk = permuteHalf ? headDim : Math.max(1, Math.floor(CHUNK_ELEMS / cols));
    for (let r = 0; r < rows; r += perChunk) {
      const n = Math.min(perChunk, rows - r);
      const out = new Float32Array(n * cols);
      for (let i = 0; i < out.length; i++) out[i] = isNorm ? 1 + 0.1 * rng.normal() : this.std * rng.normal();
      yield permuteHalf ? permuteHeadRows(out, headDim, cols) : out;
    }
  }
}

export function permuteHeadRows(head: Float32Array, hd: number, cols: number): Float32Array {
  const out = new Float32Array(head.length);
  for (let j = 0; j < 2; j++) {
    for (let i = 0; i < hd / 2; i++) {
      out.set(head.subarray((2 * i + j) * cols, (2 * i + j + 1) * cols), (j * (hd / 2) + i) * cols);
    }
  }
  return out;
}

/** FNV-1a of the name mixed with the seed. */
function hashSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** mulberry32 uniforms (tiny, fast, 32-bit state) and Box–Muller normals. */
export class Prng {
  private spare: number | undefined;
  constructor(private state: number) {}
  uniform(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const u = 1 - this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}
