/**
 * Which model an LLMServer serves: the path it was given, or — with none — a small random-weight model
 * written once to the temp directory. Random weights are announced loudly: their output is noise.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeRandomModel, type RandomModelConfig } from '@flotilla/engine';
import { LLMServerConfigError } from './errors.js';

/** The random model's shape: about 1M parameters, fast on one CPU core. */
export const RANDOM_MODEL_CONFIG: RandomModelConfig = {
  dim: 128,
  hiddenDim: 384,
  nLayers: 4,
  nHeads: 4,
  nKvHeads: 4,
  vocabSize: 512,
  maxSeqLen: 512,
};

export interface ModelSource {
  path: string;
  tokenizer: string | undefined;
  randomWeights: boolean;
  /** Default served name: the file or directory name without extension. */
  defaultName: string;
}

/** Checked in the constructor so that a wrong path fails the deployment at start, naming the path. */
export function checkModelPaths(model: string | undefined, tokenizer: string | undefined): void {
  if (model !== undefined && !existsSync(model)) throw new LLMServerConfigError(`model ${model} does not exist`);
  if (tokenizer !== undefined && !existsSync(tokenizer))
    throw new LLMServerConfigError(`tokenizer ${tokenizer} does not exist`);
}

export async function resolveModelSource(
  model: string | undefined,
  tokenizer: string | undefined,
): Promise<ModelSource> {
  if (model !== undefined) {
    const base = path.basename(path.resolve(model));
    return {
      path: model,
      tokenizer,
      randomWeights: false,
      defaultName: base.replace(/\.(bin|gguf|safetensors)$/i, ''),
    };
  }
  const c = RANDOM_MODEL_CONFIG;
  const dir = path.join(os.tmpdir(), `flotilla-random-${c.dim}x${c.nLayers}-v${c.vocabSize}-s${c.maxSeqLen}`);
  const file = path.join(dir, 'model.bin');
  // Written once per machine; a half-written file from a crash is rewritten because the marker is missing.
  if (!existsSync(path.join(dir, '.complete'))) {
    await makeRandomModel(c, { format: 'llama2c', dir, seed: 0 });
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path.join(dir, '.complete'), '');
  }
  return { path: file, tokenizer: undefined, randomWeights: true, defaultName: 'random-weights' };
}

export function randomWeightsBanner(source: ModelSource): string {
  const c = RANDOM_MODEL_CONFIG;
  return (
    `[flotilla] LLMServer: no model given — serving a RANDOM-WEIGHT model (${c.nLayers} layers, dim ${c.dim}, vocab ${c.vocabSize}) ` +
    `from ${source.path}. Its output is noise. Pass model=PATH to serve a real model.\n`
  );
}
