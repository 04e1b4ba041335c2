/**
 * Random-weight Llama models for tests and benchmarks, in any of the three formats, streamed tensor by
 * tensor (a 1B model in f32 needs only a few MB of JS memory). The same (config, seed) gives the same
 * weights in every format, so the formats can be checked against each other through the addon.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { NativeModelConfig } from '../native/native-types.js';
import { writeGguf, llamaMetadata, type GgufWriteDType } from './writers/gguf-writer.js';
import { writeLlama2c } from './writers/llama2c-writer.js';
import { RandomWeights } from './writers/random-tensors.js';
import { writeSafetensorsModel } from './writers/safetensors-writer.js';
import { syntheticVocab } from './writers/synthetic-vocab.js';
import { writeHfTokenizer, writeTokenizerBin } from './writers/tokenizer-files.js';

/** The shape of a model; the rest of NativeModelConfig has Llama defaults. */
export interface RandomModelConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  /** Default: nHeads. */
  nKvHeads?: number;
  /** At least 259 (the synthetic tokenizer's specials and bytes). */
  vocabSize: number;
  /** Default 256. */
  maxSeqLen?: number;
  /** Default 10000 (llama2.c checkpoints can hold only this). */
  ropeTheta?: number;
  /** Default 1e-5 (llama2.c checkpoints can hold only this). */
  normEps?: number;
  /** Default true. */
  tiedEmbeddings?: boolean;
}

export interface RandomModelOptions {
  format: 'llama2c' | 'safetensors' | 'gguf';
  /** Weight type in the file. llama2c is always f32; GGUF also takes q8_0 and q4_0. Default 'f32'. */
  dtype?: 'f32' | 'f16' | 'q8_0' | 'q4_0';
  /** Directory to write into (created if missing). */
  dir: string;
  /** Seed of the weights. Default 0. */
  seed?: number;
  /** Standard deviation of matrix entries. Default 0.02. */
  std?: number;
  /** File name stem for llama2c/GGUF files and general.name. Default 'model'. */
  name?: string;
  /** safetensors only: shard size in bytes. Default: one file. */
  maxShardBytes?: number;
}

/** Llama shapes of about 15M (llama2.c stories15M), 110M (stories110M) and 1.1B (TinyLlama) parameters. */
export const MODEL_PRESETS = {
  '15m': { dim: 288, hiddenDim: 768, nLayers: 6, nHeads: 6, nKvHeads: 6, vocabSize: 32000, maxSeqLen: 256 },
  '110m': { dim: 768, hiddenDim: 2048, nLayers: 12, nHeads: 12, nKvHeads: 12, vocabSize: 32000, maxSeqLen: 1024 },
  '1b': { dim: 2048, hiddenDim: 5632, nLayers: 22, nHeads: 32, nKvHeads: 4, vocabSize: 32000, maxSeqLen: 2048 },
} as const satisfies Record<string, RandomModelConfig>;

export function fullConfig(
  c: RandomModelConfig,
  ropeLayout: NativeModelConfig['ropeLayout'] = 'interleaved',
): NativeModelConfig {
  return {
    dim: c.dim,
    hiddenDim: c.hiddenDim,
    nLayers: c.nLayers,
    nHeads: c.nHeads,
    nKvHeads: c.nKvHeads ?? c.nHeads,
    vocabSize: c.vocabSize,
    maxSeqLen: c.maxSeqLen ?? 256,
    ropeTheta: c.ropeTheta ?? 10000,
    ropeLayout,
    normEps: c.normEps ?? 1e-5,
    tiedEmbeddings: c.tiedEmbeddings ?? true,
  };
}

/**
 * Writes a random model and returns the path readModelSpec() takes: the checkpoint (llama2c, with
 * tokenizer.bin beside it), the directory (safetensors) or the .gguf file.
 */
export async function makeRandomModel(config: RandomModelConfig, options: RandomModelOptions): Promise<string> {
  const full = fullConfig(config);
  const dtype = options.dtype ?? 'f32';
  const name = options.name ?? 'model';
  const weights = new RandomWeights(full, {
    seed: options.seed ?? 0,
    ...(options.std !== undefined ? { std: options.std } : {}),
  });
  const vocab = syntheticVocab(full.vocabSize);
  await mkdir(options.dir, { recursive: true });
  switch (options.format) {
    case 'llama2c': {
      if (dtype !== 'f32') throw new RangeError(`llama2.c checkpoints are f32 only, not ${dtype}`);
      const file = path.join(options.dir, `${name}.bin`);
      await writeLlama2c(file, full, weights);
      await writeTokenizerBin(path.join(options.dir, 'tokenizer.bin'), vocab);
      return file;
    }
    case 'safetensors': {
      if (dtype !== 'f32' && dtype !== 'f16')
        throw new RangeError(`safetensors random models are f32 or f16, not ${dtype}`);
      await writeSafetensorsModel(options.dir, full, weights, {
        dtype,
        ...(options.maxShardBytes ? { maxShardBytes: options.maxShardBytes } : {}),
      });
      await writeHfTokenizer(options.dir, vocab);
      return options.dir;
    }
    case 'gguf': {
      const file = path.join(options.dir, `${name}.gguf`);
      await writeGguf(file, full, weights, llamaMetadata(full, vocab, name), dtype as GgufWriteDType);
      return file;
    }
  }
}
