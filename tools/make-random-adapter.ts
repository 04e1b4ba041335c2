/**
 * Writes a random PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) for a base model,
 * for tests, benchmarks and demos of multi-LoRA serving. The shapes come from the base model's files.
 *
 *   npx tsx tools/make-random-adapter.ts --base test/fixtures/models/stories260K-hf --rank 8 --out /tmp/a0
 *   npx tsx tools/make-random-adapter.ts --base /tmp/m110/110m.bin --rank 8 --modules q_proj,v_proj --seed 3 --out /tmp/a1
 *
 * Prints the adapter directory (what loadAdapter() / lora_modules take).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { readModelSpec } from '../packages/engine/src/model-loader/read-model-spec.js';
import { ALL_LORA_MODULES, writeRandomAdapter } from '../packages/engine/src/model-loader/writers/peft-writer.js';

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`not a positive integer: ${v}`);
  return n;
};

const program = new Command('make-random-adapter')
  .description('Write a random-weight PEFT LoRA adapter for a base model')
  .requiredOption('--base <path>', 'the base model (llama2.c file, GGUF file or Hugging Face directory)')
  .requiredOption('--out <dir>', 'directory to write into (created)')
  .requiredOption('--rank <n>', 'LoRA rank r', int)
  .option('--alpha <x>', 'lora_alpha (default 2 × rank)', (v) => Number(v))
  .option('--modules <list>', `comma-separated target modules (default: ${ALL_LORA_MODULES.join(',')})`)
  .option('--seed <n>', 'PRNG seed', (v) => Number(v), 0)
  .option('--std <x>', 'standard deviation of A and B entries', (v) => Number(v), 0.02)
  .addOption(new Option('--dtype <dtype>', 'tensor type').choices(['f32', 'f16', 'bf16']).default('f32'));

async function main(): Promise<void> {
  const o = program.parse().opts();
  const spec = await readModelSpec(o.base);
  const out = path.resolve(o.out);
  mkdirSync(out, { recursive: true });
  await writeRandomAdapter(out, spec.config, {
    rank: o.rank,
    seed: o.seed,
    std: o.std,
    dtype: o.dtype,
    baseModel: spec.modelName,
    ...(o.alpha !== undefined ? { alpha: o.alpha } : {}),
    ...(o.modules ? { targetModules: String(o.modules).split(',') } : {}),
  });
  console.log(out);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
