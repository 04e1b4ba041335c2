/** Random PEFT adapters of the bundled stories260K-hf for the LoRA tests (the project's own writer). */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeRandomAdapter } from '../../packages/engine/src/model-loader/writers/peft-writer.js';
import { STORIES260K_HF_CONFIG } from './models.js';

/**
 * Writes a rank-8 adapter of stories260K-hf under `dir` per name (seed `seedBase` + its index, std 0.1) and
 * returns them as LLMServer's `lora_modules` text: `name=path,...`.
 */
export async function writeStoriesAdapters(dir: string, names: readonly string[], seedBase: number): Promise<string> {
  for (const [i, name] of names.entries()) {
    mkdirSync(path.join(dir, name), { recursive: true });
    await writeRandomAdapter(path.join(dir, name), STORIES260K_HF_CONFIG, { rank: 8, seed: seedBase + i, std: 0.1 });
  }
  return names.map((n) => `${n}=${path.join(dir, n)}`).join(',');
}
