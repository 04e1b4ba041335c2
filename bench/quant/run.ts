/**
 * Pre-quantized checkpoints against the engine's own quantization, on one random-weight model (110M by
 * default): the same seeded weights written as an f16 Hugging Face checkpoint (loaded with the engine's
 * int8 and int4, quantized at load) and as GPTQ / AWQ checkpoints (round to nearest in their layouts,
 * repacked at load). For each: weights MB held, load time, single-sequence decode and batch-32 decode
 * tok/s. Each engine layout is loaded once per `--activations` value (default both): 'int8' (the default:
 * VNNI / maddubs integer dot products) and 'f32' (f32 activations against the weights widened in
 * registers: the dequantized model's logits), and a last table gives f32 / int8 per layout. Every model
 * is loaded at once and the decode rounds go model after model, round after round, so load from other
 * processes weighs on all alike: compare the ratios, not the absolute figures.
 *
 * The same seeded weights are also written as GGUF Q4_0 and Q8_0 files and loaded by the engine as they
 * are (weightFormat 'auto': every matrix, the tied embedding included, stays Q4_0/Q8_0). Given a
 * llama.cpp build (`--llama-cpp DIR`, its build/bin directory, or LLAMA_CPP_BIN; nothing is downloaded),
 * llama.cpp runs the very same files in the same rounds, after the engine's models, with the engine's
 * thread count (see llama-cpp.ts for its commands), and a second table gives engine / llama.cpp.
 * Without it the bench says llama.cpp was not measured. Figures and the llama.cpp build used:
 * docs/quantized-checkpoints.md.
 *
 *   npx tsx bench/quant/run.ts [--model 110m|15m] [--rounds 4] [--threads N] [--llama-cpp DIR] [--gguf-only]
 *                              [--activations int8,f32]
 *
 * --gguf-only skips the GPTQ/AWQ checkpoints (keeps the engine's int8/int4 and the GGUF files).
 *
 * Prints a table and writes bench/results/quant-<time>.json.
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
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
import { batchedBenchDecode, llamaBenchDecode, llamaCppDir } from './llama-cpp.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '110m' },
    rounds: { type: 'string', default: '4' },
    threads: { type: 'string' },
    'llama-cpp': { type: 'string' },
    'gguf-only': { type: 'boolean', default: false },
    activations: { type: 'string', default: 'int8,f32' },
  },
});
type Activations = NonNullable<NativeLoadOptions['activations']>;
const ACTIVATIONS = values.activations.split(',') as Activations[];
for (const a of ACTIVATIONS) if (a !== 'int8' && a !== 'f32') throw new Error(`--activations: int8 or f32, got '${a}'`);
const llamaCpp = llamaCppDir(values['llama-cpp']);
const preset = values.model as keyof typeof MODEL_PRESETS;
const rounds = Number(values.rounds);
const threads = values.threads ? Number(values.threads) : undefined;
const SEED = 1;

interface Layout {
  name: string;
  scheme?: QuantScheme;
  weightFormat?: NativeWeightFormat;
  gguf?: GgufQuant;
}
type GgufQuant = 'q8_0' | 'q4_0';
const ALL_LAYOUTS: Layout[] = [
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
  { name: 'GGUF Q8_0 (engine)', gguf: 'q8_0' },
  { name: 'GGUF Q4_0 (engine)', gguf: 'q4_0' },
];
const LAYOUTS = values['gguf-only'] ? ALL_LAYOUTS.filter((l) => !l.scheme) : ALL_LAYOUTS;

async function checkpoint(l: Layout): Promise<string> {
  if (l.gguf) {
    const dir = path.join(os.tmpdir(), 'flotilla-bench-models', `quant-${preset}-gguf`);
    const file = path.join(dir, `${preset}-${l.gguf}.gguf`);
    if (existsSync(file)) return file;
    console.log(`writing ${preset} ${l.gguf} to ${file} ...`);
    const partial = await makeRandomModel(MODEL_PRESETS[preset], {
      format: 'gguf',
      dtype: l.gguf,
      dir,
      seed: SEED,
      name: `${preset}-${l.gguf}-partial`,
    });
    renameSync(partial, file); // only a whole file is reused by later runs
    return file;
  }
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
/** One measured layout: the engine on a checkpoint, or llama.cpp on a GGUF file; one sample per round each. */
interface Entry {
  name: string;
  layout?: string;
  activations?: Activations;
  gguf?: GgufQuant;
  engine?: NativeModel;
  kernels: string;
  threads: number;
  weightMB: number;
  loadS: number[];
  single: number[];
  batch32: number[];
  measure: () => Promise<void>;
}
const entries: Entry[] = [];
for (const layout of LAYOUTS) {
  const spec = await readModelSpec(await checkpoint(layout));
  for (const activations of ACTIVATIONS) {
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
    const e: Entry = {
      name: activations === 'int8' ? layout.name : `${layout.name} [f32 act]`,
      layout: layout.name,
      activations,
      ...(layout.gguf ? { gguf: layout.gguf } : {}),
      engine: model,
      kernels: model.kernels,
      threads: model.numThreads,
      weightMB: model.weightBytes / 2 ** 20,
      loadS: [(performance.now() - t0) / 1000],
      single: [],
      batch32: [],
      measure: async () => {
        const rates = await interleavedDecode(model, PLANS, 1);
        e.single.push(rates.get(1)!.tokS);
        e.batch32.push(rates.get(32)!.tokS);
      },
    };
    entries.push(e);
  }
}
let llamaCppBuild = '';
if (llamaCpp) {
  const t = entries[0]!.threads; // the engine's thread count
  for (const gguf of ['q8_0', 'q4_0'] as const) {
    const file = await checkpoint({ name: gguf, gguf });
    const e: Entry = {
      name: `llama.cpp ${gguf.toUpperCase()} (same file)`,
      gguf,
      kernels: 'llama.cpp',
      threads: t,
      weightMB: 0,
      loadS: [],
      single: [],
      batch32: [],
      measure: async () => {
        const d = await llamaBenchDecode(llamaCpp, file, t);
        const b = await batchedBenchDecode(llamaCpp, file, t);
        llamaCppBuild = d.build;
        e.kernels = `llama.cpp ${d.build}`;
        e.weightMB = d.modelBytes / 2 ** 20;
        e.single.push(d.tokS);
        e.batch32.push(b.tokS);
        e.loadS.push(b.loadS);
      },
    };
    entries.push(e);
  }
}
for (let r = 0; r < rounds; r++) for (const e of entries) await e.measure();
for (const e of entries) e.engine?.dispose();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = entries.find((e) => e.layout?.startsWith('engine int4') && e.activations === ACTIVATIONS[0])!;
const rows = entries.map((e) => ({
  layout: e.name,
  kernels: e.kernels,
  threads: e.threads,
  weightMB: e.weightMB,
  loadS: median(e.loadS),
  singleTokS: median(e.single),
  batch32TokS: median(e.batch32),
  singleVsEngineInt4: median(e.single) / median(base.single),
  batch32VsEngineInt4: median(e.batch32) / median(base.batch32),
}));
const f = (x: number, w: number, d = 1) => x.toFixed(d).padStart(w);
console.log(
  `\n${preset} model, ${rounds} interleaved rounds (medians); ratios against the engine's own int4 in the same run`,
);
console.log('layout                          weights MB  load s  decode tok/s  batch-32 tok/s  decode/int4  b32/int4');
for (const r of rows)
  console.log(
    `${r.layout.padEnd(31)} ${f(r.weightMB, 10)} ${f(r.loadS, 7, 2)} ${f(r.singleTokS, 13)} ${f(r.batch32TokS, 15)} ${f(r.singleVsEngineInt4, 11, 2)}x ${f(r.batch32VsEngineInt4, 8, 2)}x`,
  );
const versus = !llamaCpp
  ? []
  : (['q8_0', 'q4_0'] as const).map((gguf) => {
      // The engine with its default activations (int8) against llama.cpp (which quantizes them to Q8 too).
      const row = (byEngine: boolean) =>
        rows[
          entries.findIndex(
            (e) => e.gguf === gguf && !!e.engine === byEngine && (!byEngine || e.activations === ACTIVATIONS[0]),
          )
        ]!;
      const [eng, ref] = [row(true), row(false)];
      return {
        file: gguf,
        weightMB: { engine: eng.weightMB, llamaCpp: ref.weightMB },
        loadS: { engine: eng.loadS, llamaCpp: ref.loadS },
        decodeEngineOverLlamaCpp: eng.singleTokS / ref.singleTokS,
        batch32EngineOverLlamaCpp: eng.batch32TokS / ref.batch32TokS,
      };
    });
if (llamaCpp) {
  console.log(
    `\nengine / llama.cpp (${llamaCppBuild}, ${llamaCpp}) on the same GGUF file, ${entries[0]!.threads} threads`,
  );
  console.log('file   weights MB eng/l.cpp  load s eng/l.cpp  decode eng/l.cpp  batch-32 eng/l.cpp');
  for (const v of versus)
    console.log(
      `${v.file.toUpperCase().padEnd(6)} ${f(v.weightMB.engine, 9)} / ${f(v.weightMB.llamaCpp, 6)} ${f(v.loadS.engine, 7, 2)} / ${f(v.loadS.llamaCpp, 5, 2)} ${f(v.decodeEngineOverLlamaCpp, 15, 2)}x ${f(v.batch32EngineOverLlamaCpp, 18, 2)}x`,
    );
} else console.log('\nllama.cpp not measured: pass --llama-cpp DIR (its build/bin) or set LLAMA_CPP_BIN');
const actRatios = LAYOUTS.flatMap((l) => {
  const of = (a: Activations) => rows[entries.findIndex((e) => e.layout === l.name && e.activations === a)];
  const [i8, f32] = [of('int8'), of('f32')];
  return i8 && f32
    ? [
        {
          layout: l.name,
          decodeF32OverInt8: f32.singleTokS / i8.singleTokS,
          batch32F32OverInt8: f32.batch32TokS / i8.batch32TokS,
        },
      ]
    : [];
});
if (actRatios.length > 0) {
  console.log('\nf32 activations against int8 activations, same weights (medians):');
  for (const r of actRatios)
    console.log(
      `${r.layout.padEnd(31)} decode ${f(r.decodeF32OverInt8, 5, 2)}x  batch-32 ${f(r.batch32F32OverInt8, 5, 2)}x`,
    );
}
const outDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../results');
mkdirSync(outDir, { recursive: true });
const out = path.join(outDir, `quant-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
const llama = llamaCpp ? { dir: llamaCpp, build: llamaCppBuild, versus } : 'not measured (no --llama-cpp DIR)';
writeFileSync(
  out,
  JSON.stringify({ preset, rounds, cpu: binding.cpuFeatures(), llamaCpp: llama, rows, actRatios }, null, 2),
);
console.log(`wrote ${out}`);
