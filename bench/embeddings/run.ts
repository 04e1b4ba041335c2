/**
 * Embeddings benchmark: LLMEngine.embed() (the path /v1/embeddings and gRPC Embed take) on the random-weight
 * ~110M Llama of bench/engine (written once to the temp directory), embeddings per second at batch 1 (one
 * input per call, calls back to back) and batch 64 (64 inputs per call, one native embed per step), and,
 * side by side in the same rounds, the same 64 prompts as one-token generations (forward + classifier +
 * sampling of the last row) for a ratio that holds on a shared machine. Rounds alternate the three.
 *
 *   npx tsx bench/embeddings/run.ts [--model 110m|15m] [--tokens 32] [--rounds 3] [--threads N] [--format f32]
 *
 * Prints a table and writes bench/results/embeddings-<time>.json.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import { makeRandomModel, MODEL_PRESETS } from '../../packages/engine/src/model-loader/random-model.js';
import type { NativeWeightFormat } from '../../packages/engine/src/native/native-types.js';

type Preset = keyof typeof MODEL_PRESETS;
const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const preset = opt('model', '110m') as Preset;
const tokens = Number(opt('tokens', '32'));
const rounds = Number(opt('rounds', '3'));
const threads = Number(opt('threads', '0')) || undefined;
const weightFormat = opt('format', 'f32') as NativeWeightFormat;
const BATCH = 64;

async function modelFile(p: Preset): Promise<string> {
  const dir = path.join(os.tmpdir(), 'flotilla-bench-models', p);
  const file = path.join(dir, `${p}.bin`);
  if (existsSync(file) && existsSync(path.join(dir, 'tokenizer.bin'))) return file;
  console.log(`writing random-weight ${p} model to ${dir} ...`);
  return makeRandomModel(MODEL_PRESETS[p], { format: 'llama2c', dir, name: p, seed: 1 });
}

/** `n` distinct prompts of `len` token ids (BOS first), so nothing is shared between them. */
function prompts(n: number, len: number, vocab: number): Array<{ tokenIds: number[] }> {
  return Array.from({ length: n }, (_, s) => ({
    tokenIds: [1, ...Array.from({ length: len - 1 }, (_, i) => ((i * 7919 + s * 104729 + 13) % (vocab - 3)) + 3)],
  }));
}

const engine = await LLMEngine.create({
  model: await modelFile(preset),
  weightFormat,
  device: 'cpu',
  maxNumSeqs: BATCH,
  maxNumBatchedTokens: Math.max(BATCH * tokens, 2048),
  enablePrefixCaching: false,
  ...(threads ? { numThreads: threads } : {}),
});
const vocab = engine.spec.config.vocabSize;
const inputs = prompts(BATCH, tokens, vocab);
console.log(
  `${preset} (${weightFormat}), dim ${engine.embedding.dim}, pooling ${engine.embedding.pooling}, ${tokens} tokens per input`,
);

async function single(): Promise<number> {
  const t0 = performance.now();
  for (const input of inputs.slice(0, 16)) await engine.embed([input]);
  return 16 / ((performance.now() - t0) / 1000);
}

async function batch(): Promise<number> {
  const t0 = performance.now();
  await engine.embed(inputs);
  return BATCH / ((performance.now() - t0) / 1000);
}

async function generate1(): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    inputs.map(async (input) => {
      for await (const _ of engine.generate(input, { maxTokens: 1, temperature: 0, ignoreEos: true })) {
        /* drain */
      }
    }),
  );
  return BATCH / ((performance.now() - t0) / 1000);
}

await single(); // warm-up: pages, pool threads
await batch();
const runs = { batch1: [] as number[], batch64: [] as number[], generate64: [] as number[] };
for (let r = 0; r < rounds; r++) {
  runs.batch1.push(await single());
  runs.batch64.push(await batch());
  runs.generate64.push(await generate1());
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const result = {
  model: preset,
  weightFormat,
  tokensPerInput: tokens,
  dim: engine.embedding.dim,
  pooling: engine.embedding.pooling,
  threads: threads ?? null,
  rounds,
  embeddingsPerS: { batch1: median(runs.batch1), batch64: median(runs.batch64) },
  generate1TokenPerS: median(runs.generate64),
  batch64OverBatch1: median(runs.batch64) / median(runs.batch1),
  embedOverGenerate1: median(runs.batch64) / median(runs.generate64),
  runs,
  cpus: os.cpus().length,
  loadavg: os.loadavg(),
};
await engine.dispose();
const f = (x: number, w: number, d = 1) => x.toFixed(d).padStart(w);
console.log('\nmodel  tokens  emb/s batch1  emb/s batch64  batch64/batch1  1-token generations/s (64)  embed/generate');
console.log(
  `${preset.padEnd(6)} ${f(tokens, 6, 0)} ${f(result.embeddingsPerS.batch1, 12)} ${f(result.embeddingsPerS.batch64, 14)} ` +
    `${f(result.batch64OverBatch1, 14, 2)}x ${f(result.generate1TokenPerS, 27)} ${f(result.embedOverGenerate1, 14, 2)}x`,
);
const outDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../results');
mkdirSync(outDir, { recursive: true });
const out = path.join(outDir, `embeddings-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
console.log(`wrote ${path.relative(process.cwd(), out)}`);
