/**
 * Writes a random-weight Llama model for tests and benchmarks.
 *
 *   npx tsx tools/make-random-model.ts --preset 110m --format safetensors --out /tmp/m110
 *   npx tsx tools/make-random-model.ts --preset 1b --format gguf --dtype q8_0 --out /tmp/m1b
 *   npx tsx tools/make-random-model.ts --dim 64 --hidden 172 --layers 5 --heads 8 --kv-heads 4 --vocab 512 --format llama2c --out /tmp/tiny
 *
 * Prints the path to pass to readModelSpec() / loadModel().
 */
import { Command, Option } from 'commander';
import {
  makeRandomModel,
  MODEL_PRESETS,
  type RandomModelConfig,
} from '../packages/engine/src/model-loader/random-model.js';

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`not a positive integer: ${v}`);
  return n;
};

const program = new Command('make-random-model')
  .description('Write a random-weight Llama model as llama2.c, safetensors (HF directory) or GGUF')
  .addOption(new Option('--preset <name>', 'model shape').choices(Object.keys(MODEL_PRESETS)))
  .option('--dim <n>', 'model width (overrides the preset)', int)
  .option('--hidden <n>', 'SwiGLU hidden width', int)
  .option('--layers <n>', 'number of layers', int)
  .option('--heads <n>', 'attention heads', int)
  .option('--kv-heads <n>', 'key/value heads (default: heads)', int)
  .option('--vocab <n>', 'vocabulary size (≥ 259)', int)
  .option('--seq-len <n>', 'max sequence length', int)
  .option('--untied', 'write a separate classifier instead of sharing the embedding')
  .addOption(
    new Option('--format <format>', 'file format').choices(['llama2c', 'safetensors', 'gguf']).makeOptionMandatory(),
  )
  .addOption(
    new Option('--dtype <dtype>', 'weight type (llama2c: f32 only; safetensors: f32, f16; gguf: all)')
      .choices(['f32', 'f16', 'q8_0', 'q4_0'])
      .default('f32'),
  )
  .requiredOption('--out <dir>', 'directory to write into')
  .option('--seed <n>', 'PRNG seed', (v) => Number(v), 0)
  .option('--std <x>', 'standard deviation of matrix entries', (v) => Number(v), 0.02)
  .option('--name <stem>', 'file name stem', 'model')
  .option('--shard-mb <n>', 'safetensors: shard size in MiB', int);

async function main(): Promise<void> {
  const o = program.parse().opts();
  const preset: Partial<RandomModelConfig> = o.preset ? MODEL_PRESETS[o.preset as keyof typeof MODEL_PRESETS] : {};
  const config = {
    ...preset,
    ...(o.dim && { dim: o.dim }),
    ...(o.hidden && { hiddenDim: o.hidden }),
    ...(o.layers && { nLayers: o.layers }),
    ...(o.heads && { nHeads: o.heads }),
    ...(o.kvHeads && { nKvHeads: o.kvHeads }),
    ...(o.vocab && { vocabSize: o.vocab }),
    ...(o.seqLen && { maxSeqLen: o.seqLen }),
    ...(o.untied && { tiedEmbeddings: false }),
  };
  const missing = (['dim', 'hiddenDim', 'nLayers', 'nHeads', 'vocabSize'] as const).filter(
    (k) => config[k] === undefined,
  );
  if (missing.length) program.error(`missing ${missing.join(', ')}: give --preset or the shape options`);
  const started = Date.now();
  const out = await makeRandomModel(config as RandomModelConfig, {
    format: o.format,
    dtype: o.dtype,
    dir: o.out,
    seed: o.seed,
    std: o.std,
    name: o.name,
    ...(o.shardMb ? { maxShardBytes: o.shardMb * 2 ** 20 } : {}),
  });
  console.error(`wrote ${o.format} ${o.dtype} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(out);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
