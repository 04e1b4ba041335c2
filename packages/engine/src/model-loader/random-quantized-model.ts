/**
 * Random-weight GPTQ / AWQ checkpoints (Hugging Face directories) for tests and benchmarks: the same
 * seeded weights as makeRandomModel's, quantized by round to nearest into the real layouts
 * (writers/gptq-quantize.ts). quantizeCanonical() with the same (weights, scheme, seed) rebuilds any
 * layer exactly as written, which is how tests make references of the same weights.
 */
import { mkdir } from 'node:fs/promises';
import { fullConfig, type RandomModelConfig } from './random-model.js';
import type { QuantScheme } from './writers/gptq-quantize.js';
import { writeQuantizedModel } from './writers/quantized-writer.js';
import { RandomWeights } from './writers/random-tensors.js';
import { syntheticVocab } from './writers/synthetic-vocab.js';
import { writeHfTokenizer } from './writers/tokenizer-files.js';

export interface RandomQuantizedModelOptions {
  dir: string;
  scheme: QuantScheme;
  /** Seed of the weights (and of desc_act's orders). Default 0. */
  seed?: number;
  /** Standard deviation of matrix entries. Default 0.02. */
  std?: number;
}

/** The weight source a random quantized model is written from (for references). */
export function randomQuantizedWeights(config: RandomModelConfig, seed = 0, std?: number): RandomWeights {
  return new RandomWeights(fullConfig(config), { seed, ...(std !== undefined ? { std } : {}) });
}

/** Writes the checkpoint and returns its directory. */
export async function makeRandomQuantizedModel(
  config: RandomModelConfig,
  options: RandomQuantizedModelOptions,
): Promise<string> {
  const full = fullConfig(config);
  await mkdir(options.dir, { recursive: true });
  const weights = randomQuantizedWeights(config, options.seed ?? 0, options.std);
  await writeQuantizedModel(options.dir, full, weights, options.scheme, options.seed ?? 0);
  await writeHfTokenizer(options.dir, syntheticVocab(full.vocabSize));
  return options.dir;
}
