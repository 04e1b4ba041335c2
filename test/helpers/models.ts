/**
 * Where tests find the real small models: ../shared/models beside the checkout (or $FLOTILLA_MODELS).
 * Tests that need them use `describeWithModels` so a machine without the folder skips with a clear reason.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const modelsDir = process.env.FLOTILLA_MODELS ?? path.resolve(repoRoot, '../shared/models');
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
  console.warn(`[flotilla tests] ${modelsDir} not found: tests on real models are skipped (set FLOTILLA_MODELS to point at it).`);
}

/** describe() that skips, with the reason in its name, when the shared models are absent. */
export const describeWithModels: typeof describe = (haveModels
  ? describe
  : ((name: string, fn: () => void) => describe.skip(`${name} (skipped: no models at ${modelsDir})`, fn))) as typeof describe;
