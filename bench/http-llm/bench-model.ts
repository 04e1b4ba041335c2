/**
 * Which model bench/http-llm serves (`--model`): '110m' (default), 'tiny', or a path. The HTTP cost per
 * token is roughly fixed, so what it is measured against matters: 'tiny' (RANDOM_MODEL_CONFIG, what
 * LLMServer serves without a model, ~75 µs of compute per token) makes the HTTP path look expensive,
 * while '110m' (random weights, MODEL_PRESETS['110m'], the size bench/engine-serving uses) costs what a
 * small real model costs per token, as in serving.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeRandomModel } from '@flotilla/engine';
import { RANDOM_MODEL_CONFIG } from '@flotilla/deployments';
import { MODEL_PRESETS, type RandomModelConfig } from '../../packages/engine/src/model-loader/index.js';

export interface BenchModel {
  /** '110m', 'tiny', or the path given. */
  name: string;
  /** The file or directory both paths load. */
  path: string;
  /** The generated model's shape; absent for a model given by path. */
  config?: RandomModelConfig;
  randomWeights: boolean;
  /** Tokens per stream when --tokens is not given: enough to measure, few enough for ~4 minutes on 2 cores. */
  defaultTokens: number;
  /** KV pool per engine (64 streams of prompt + tokens must fit without preemption). Default: the engine's (256 MiB). */
  kvCacheBytes?: number;
}

/** Where the 110m model lives: the same file bench/engine-serving writes (seed 1), so the two share it. */
export async function resolveBenchModel(choice: string, root: string): Promise<BenchModel> {
  if (choice === 'tiny') {
    const dir = path.join(os.tmpdir(), 'flotilla-bench-http-llm');
    const file = await makeRandomModel(RANDOM_MODEL_CONFIG, { format: 'llama2c', dir, seed: 0 });
    return { name: 'tiny', path: file, config: RANDOM_MODEL_CONFIG, randomWeights: true, defaultTokens: 64 };
  }
  if (choice === '110m') {
    const config = MODEL_PRESETS['110m'];
    const dir = path.join(root, '.tmp', 'bench-models', '110m');
    const file = existsSync(path.join(dir, 'model.bin'))
      ? path.join(dir, 'model.bin')
      : await makeRandomModel(config, { format: 'llama2c', dir, seed: 1 });
    // 64 streams × (≈20 prompt + up to 128 tokens) ≈ 9.5k tokens × 72 KiB of f32 K and V per token ≈ 700 MiB.
    return { name: '110m', path: file, config, randomWeights: true, defaultTokens: 32, kvCacheBytes: 1024 * 2 ** 20 };
  }
  const file = path.resolve(choice);
  if (!existsSync(file))
    throw new Error(`--model must be 110m, tiny or an existing model file or directory; ${file} does not exist`);
  return { name: choice, path: file, randomWeights: false, defaultTokens: 32, kvCacheBytes: 1024 * 2 ** 20 };
}

/** One line for the table's header. */
export function describeBenchModel(m: BenchModel): string {
  if (!m.config) return `model ${m.path}`;
  const c = m.config;
  const params = (c.dim * c.dim * 4 + c.dim * c.hiddenDim * 3) * c.nLayers + c.vocabSize * c.dim;
  return `model ${m.name} (random weights, ${(params / 1e6).toFixed(params < 1e7 ? 1 : 0)}M params: dim ${c.dim}, ${c.nLayers} layers, vocab ${c.vocabSize})`;
}
