/**
 * Where tests find the real small models: test/fixtures/models inside the repository (or
 * $FLOTILLA_MODELS). They are part of every clone, so a missing file is a broken checkout: the
 * suites fail loudly instead of skipping.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const modelsDir = process.env.FLOTILLA_MODELS ?? path.join(repoRoot, 'test/fixtures/models');
export const haveModels = existsSync(path.join(modelsDir, 'stories260K', 'stories260K.bin'));

export const models = {
  stories260K: path.join(modelsDir, 'stories260K', 'stories260K.bin'),
  stories260KGguf: path.join(modelsDir, 'stories260K', 'stories260K-f32.gguf'),
  stories260KHf: path.join(modelsDir, 'stories260K-hf'),
  tok512: path.join(modelsDir, 'stories260K', 'tok512.bin'),
  llama2xs260K: path.join(modelsDir, 'llama2xs-260K', 'llama2xs-260K.bin'),
  llamaTokenizer: path.join(modelsDir, 'llama2c-tokenizer', 'tokenizer.bin'),
  goldens: path.join(modelsDir, 'goldens.json'),
};

if (!haveModels) {
  throw new Error(`[flotilla tests] the test models are missing from ${modelsDir} (a partial checkout?)`);
}

/** describe() for suites on the real models (kept as a name: the models are always present now). */
export const describeWithModels: typeof describe = describe;

/**
 * stories260K's shape as its Hugging Face layout (test/fixtures/models/stories260K-hf) holds it: what the
 * LoRA tests write random adapters against (packages/engine/src/model-loader/writers).
 */
export const STORIES260K_HF_CONFIG = {
  dim: 64,
  hiddenDim: 172,
  nLayers: 5,
  nHeads: 8,
  nKvHeads: 4,
  vocabSize: 512,
  maxSeqLen: 512,
  ropeTheta: 10000,
  ropeLayout: 'half' as const,
  normEps: 1e-5,
  tiedEmbeddings: true,
};
