/**
 * Pre-quantized checkpoints against the engine's own quantization, on one random-weight model (110M by
 * default): the same seeded weights written as an f16 Hugging Face checkpoint (loaded with the engine's
 * int8 and int4, quantized at load) and as GPTQ / AWQ checkpoints (round to nearest in their layouts,
 * repacked at load). For each: weights MB held, load time, single-sequence decode and batch-32 decode
 * tok/s, each layout loaded twice: with activations 'int8' (the default: VNNI / maddubs integer dot
 * products) and 'f32' (the f32 activations against the weights widened in registers: the dequantized
 * model's logits), side by side. Every model is loaded at once and the decode rounds go model after
 * model, round after round, so load from other processes weighs on all alike: compare the ratios, not
 * the absolute figures.
 * llama.cpp's Q4_0/Q8_0 are not measured here (no llama.cpp on the machines this runs on).
 *
 *   npx tsx bench/quant/run.ts [--model 110m|15m] [--rounds 4] [--threads N]
 *
 * Prints a table and writes bench/results/quant-<time>.json.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MODEL_PRESETS, makeRandomModel } from '../../packages/engine/src/model-loader/random-model.js';
import { makeRandomQuantizedModel } from '../../packages/engine/src/model-loader/random-quantized-model.js';
import { readModelSpec } from '../../packages/engine/src/model-loader/read-model-spec.js';
import type { QuantScheme } from '../../packages/engine/src/model-loader/writers/gptq-quantize.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import type {
  NativeLoadOptions,
  NativeModel,
  NativeWeightFormat,
} from '../../packages/engine/src/native/native-types.js';
import { interleavedBlocks, interleavedDecode } from '../engine/measure.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '110m' },
    rounds: { type: 'string', default: '4' },
    threads: { type: 'string' },
  },
});
const preset = values.model as keyof typeof MODEL_PRESETS;
const rounds = Number(values.rounds);
const threads = values.threads ? Number(values.threads) : undefined;
const SEED = 1;

interface Layout {
  name: string;
  scheme?: QuantScheme;
  weightFormat?: NativeWeightFormat;
}
const LAYOUTS: Layout[] = [
  { name: 'engine int8 (from f16)', weightFormat: 'int8' },
  { name: 'engine int4 (from f16)', weightFormat: 'int4' },
  { name: 'GPTQ 8-bit sym g128', scheme: { method: 'gptq', bits: 8, groupSize: 128, sym: true } },
  { name: 'GPTQ 8-bit asym g128', scheme: { method: 'gptq', bits: 8, groupSize: 128, sym: false } },
  { name: 'GPTQ 4-bit sym g128', scheme: { method: 'gptq', bits: 4, groupSize: 128, sym: true } },
  { name: 'GPTQ 4-bit asym g128', scheme: { method: 'gptq', bits: 4, groupSize: 128, sym: false } },
  {
    name: 'GPTQ 4-bit asym g128 act-order',
    scheme: { method: 'gptq', bits: 4, groupSize: 128, sym: false, descAct: true },
  },
  { name: 'AWQ 4-bit g128', scheme: { method: 'awq', bits: 4, groupSize: 128 } },
];

async function checkpoint(l: Layout): Promise<string> {
  const tag = l.scheme ? l.name.replace(/[^a-z0-9]+/gi, '-').toLowerCase() : 'f16';
  const dir = path.join(os.tmpdir(), 'flotilla-bench-models', `quant-${preset}-${tag}`);
  if (existsSync(path.join(dir, 'tokenizer.json'))) return dir;
  console.log(`writing ${preset} ${tag} to ${dir} ...`);
  if (!l.scheme)
    return makeRandomModel(MODEL_PRESETS[preset], { format: 'safetensors', dtype: 'f16', dir, seed: SEED });
  return makeRandomQuantizedModel(MODEL_PRESETS[preset], { dir, scheme: l.scheme, seed: SEED });
}

const PLANS = [
  { batch: 1, stepsPerRound: preset === '15m' ? 16 : 8 },
  { batch: 32, stepsPerRound: preset === '15m' ? 2 : 1 },
];
const binding = loadNative();
console.log(`cpu ${JSON.stringify(binding.cpuFeatures())}`);
type Activations = NonNullable<NativeLoadOptions['activations']>;
interface Loaded {
  layout: Layout;
  activations: Activations;
  model: NativeModel;
  loadS: number;
  single: number[];
  batch32: number[];
}
const loaded: Loaded[] = [];
for (const layout of LAYOUTS) {
  const spec = await readModelSpec(await checkpoint(layout));
  for (const activations of ['int8', 'f32'] as const) {
    const t0 = performance.now();
    const model = await binding.loadModel({
      config: spec.config,
      files: spec.files,
      tensors: spec.tensors,
      ...(layout.weightFormat ? { weightFormat: layout.weightFormat } : {}),
      activations,
      numBlocks: interleavedBlocks(PLANS, 1, 16),
      maxBatchTokens: 512,
      maxBatchSeqs: 32,
      ...(threads ? { numThreads: threads } : {}),
    });
    loaded.push({ layout, activations, model, loadS: (performance.now() - t0) / 1000, single: [], batch32: [] });
  }
}
for (let r = 0; r < rounds; r++) {
  for (const m of loaded) {
    const rates = await interleavedDecode(m.model, PLANS, 1);
    m.single.push(rates.get(1)!.tokS);
    m.batch32.push(rates.get(32)!.tokS);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = loaded.find((m) => m.layout.weightFormat === 'int4' && m.activations === 'int8')!;
const rows = loaded.map((m) => ({
  layout: m.layout.name,
  activations: m.activations,
  kernels: m.model.kernels,
  threads: m.model.numThreads,
  weightMB: m.model.weightBytes / 2 ** 20,
  loadS: m.loadS,
  singleTokS: median(m.single),
  batch32TokS: median(m.batch32),
  singleVsEngineInt4: median(m.single) / median(base.single),
  batch32VsEngineInt4: median(m.batch32) / median(base.batch32),
}));
console.log(
  `\n${preset} model, ${rounds} interleaved rounds (medians); ratios against the engine's own int4 (int8 activations) in the same run`,
);
console.log(
  'layout                          weights MB  load s  decode tok/s  batch-32 tok/s  decode/int4  b32/int4  (int8 / f32 activations)',
);
const pairs = LAYOUTS.map((l) => rows.filter((r) => r.layout === l.name));
for (const [i8, f32] of pairs) {
  const both = (f: (r: (typeof rows)[number]) => number, digits: number, width: number, suffix = '') =>
    `${f(i8!).toFixed(digits)}${suffix} / ${f(f32!).toFixed(digits)}${suffix}`.padStart(width);
  console.log(
    `${i8!.layout.padEnd(31)} ${i8!.weightMB.toFixed(1).padStart(10)} ${both((r) => r.loadS, 2, 13)} ${both((r) => r.singleTokS, 1, 15)} ${both((r) => r.batch32TokS, 1, 15)} ${both((r) => r.singleVsEngineInt4, 2, 13, 'x')} ${both((r) => r.batch32VsEngineInt4, 2, 13, 'x')}`,
  );
}
console.log('\nf32 activations against int8 activations, same weights (medians):');
for (const [i8, f32] of pairs)
  console.log(
    `${i8!.layout.padEnd(31)} decode ${(f32!.singleTokS / i8!.singleTokS).toFixed(2)}x  batch-32 ${(f32!.batch32TokS / i8!.batch32TokS).toFixed(2)}x`,
  );
for (const m of loaded) m.model.dispose();
const outDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../results');
mkdirSync(outDir, { recursive: true });
const out = path.join(outDir, `quant-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(
  out,
  JSON.stringify({ preset, rounds, cpu: binding.cpuFeatures(), llamaCpp: 'not available', rows }, null, 2),
);
console.log(`wrote ${out}`);
