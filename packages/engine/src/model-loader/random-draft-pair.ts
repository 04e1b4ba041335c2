/**
 * A random-weight draft/target pair that agrees often enough to measure speculative decoding. Every
 * random tensor is keyed by (seed, canonical name), so a `draftLayers`-layer model and an
 * `nLayers`-layer model of the same shape and seed share their embeddings, final norm, classifier
 * and first `draftLayers` layers. In the target, the output projections of the layers past those
 * (`wo`, `w2`) are scaled by `residualScale`: the extra layers then nudge the residual stream only a
 * little, flipping the greedy choice only where the draft's top logits are close. Tune the scale to
 * the acceptance wanted (smaller → higher); the target still runs all its layers at full cost.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fullConfig, type RandomModelConfig } from './random-model.js';
import { RandomWeights, type WeightSource } from './writers/random-tensors.js';
import { writeSafetensorsModel } from './writers/safetensors-writer.js';
import { syntheticVocab } from './writers/synthetic-vocab.js';
import { writeHfTokenizer } from './writers/tokenizer-files.js';

export interface RandomDraftPairOptions {
  /** Directory to write into; the pair goes to `dir/target` and `dir/draft` (safetensors). */
  dir: string;
  /** Layers of the draft (the target's first layers). Default 2. */
  draftLayers?: number;
  /** Factor on wo and w2 of the target's layers past the draft's. Default 0.1. */
  residualScale?: number;
  /** Seed of the weights. Default 0. */
  seed?: number;
  /** Standard deviation of matrix entries. Default 0.02. */
  std?: number;
  /** Weight type in the files. Default 'f32'. */
  dtype?: 'f32' | 'f16';
}

/** Scales the output projections of layers ≥ fromLayer; every other tensor passes through. */
export class ResidualScaledWeights implements WeightSource {
  constructor(
    private readonly base: WeightSource,
    private readonly fromLayer: number,
    private readonly scale: number,
  ) {}

  *chunks(name: string, shape: number[], permuteHalf?: boolean): Generator<Float32Array> {
    const m = /^layers\.(\d+)\.(wo|w2)$/.exec(name);
    const scaled = m !== null && Number(m[1]) >= this.fromLayer && this.scale !== 1;
    for (const chunk of this.base.chunks(name, shape, permuteHalf)) {
      if (scaled) for (let i = 0; i < chunk.length; i++) chunk[i] = chunk[i]! * this.scale;
      yield chunk;
    }
  }
}

/** Writes the pair; returns the two directories loadModel() takes. */
export async function makeRandomDraftPair(
  config: RandomModelConfig,
  options: RandomDraftPairOptions,
): Promise<{ target: string; draft: string }> {
  const draftLayers = options.draftLayers ?? 2;
  if (!(draftLayers >= 1 && draftLayers < config.nLayers))
    throw new RangeError(`draftLayers must be in 1..${config.nLayers - 1}, got ${draftLayers}`);
  const seed = options.seed ?? 0;
  const std = options.std !== undefined ? { std: options.std } : {};
  const dtype = options.dtype ?? 'f32';
  const vocab = syntheticVocab(config.vocabSize);
  const out = { target: path.join(options.dir, 'target'), draft: path.join(options.dir, 'draft') };
  const targetConfig = fullConfig(config);
  const draftConfig = fullConfig({ ...config, nLayers: draftLayers });
  const target = new ResidualScaledWeights(
    new RandomWeights(targetConfig, { seed, ...std }),
    draftLayers,
    options.residualScale ?? 0.1,
  );
  const draft = new RandomWeights(draftConfig, { seed, ...std });
  for (const [dir, cfg, weights] of [
    [out.target, targetConfig, target],
    [out.draft, draftConfig, draft],
  ] as const) {
    await mkdir(dir, { recursive: true });
    await writeSafetensorsModel(dir, cfg, weights, { dtype });
    await writeHfTokenizer(dir, vocab);
  }
  return out;
}
