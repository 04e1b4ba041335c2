/**
 * Engine benchmark: random-weight Llama models of ~15M, ~110M (and ~1.1B with --full) parameters in
 * f32, f16, bf16, int8 and int4 (the weight formats held in memory); single-sequence decode and prefill tokens/s, batched decode at 1/8/32/128
 * sequences, and beside each decode figure the bandwidth bound (read bandwidth measured in this run /
 * weight bytes read per step). Decode figures of all batch sizes come from interleaved rounds (measure.ts)
 * so their ratios hold on a shared machine. Prints a table and writes bench/results/engine-<time>.json.
 *
 *   npx tsx bench/engine/run.ts [--full] [--models 15m,110m] [--formats f32,f16,bf16,int8,int4] [--threads N]
 *
 * FLOTILLA_CPU_ISA=avx512|avx2|scalar picks the CPU kernels (default: the widest this CPU runs); the
 * table's kernels column says which ran.
 */
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeRandomModel, MODEL_PRESETS } from '../../packages/engine/src/model-loader/random-model.js';
import { readModelSpec } from '../../packages/engine/src/model-loader/read-model-spec.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import type { NativeWeightFormat } from '../../packages/engine/src/native/native-types.js';
import { interleavedBlocks, interleavedDecode, prefillRate, PROMPT } from './measure.js';

type Preset = keyof typeof MODEL_PRESETS;
const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const full = args.includes('--full');
const presets = opt('models', full ? '15m,110m,1b' : '15m,110m').split(',') as Preset[];
const formats = opt('formats', 'f32,f16,bf16,int8,int4').split(',') as NativeWeightFormat[];
const threads = Number(opt('threads', '0')) || undefined;
const BATCHES = [1, 8, 32, 128];
// Decode steps per interleaved round (single sequence, then batches), and the rounds.
const SHAPE: Record<Preset, { decodeSteps: number; batchSteps: number; rounds: number; prefill: number }> = {
  '15m': { decodeSteps: 16, batchSteps: 2, rounds: 4, prefill: 256 },
  '110m': { decodeSteps: 8, batchSteps: 1, rounds: 4, prefill: 256 },
  '1b': { decodeSteps: 3, batchSteps: 1, rounds: 2, prefill: 64 },
};

async function modelFile(preset: Preset): Promise<string> {
  const dir = path.join(os.tmpdir(), 'flotilla-bench-models', preset);
  const file = path.join(dir, `${preset}.bin`);
  if (existsSync(file) && existsSync(path.join(dir, 'tokenizer.bin'))) return file;
  console.log(`writing random-weight ${preset} model to ${dir} ...`);
  return makeRandomModel(MODEL_PRESETS[preset], { format: 'llama2c', dir, name: preset, seed: 1 });
}

interface Row {
  model: Preset;
  format: string;
  kernels: string;
  threads: number;
  params: number;
  weightMB: number;
  bandwidthGBs: number;
  boundTokS: number;
  decodeTokS: number;
  ofBound: number;
  prefillTokS: number;
  batch: Record<number, number>;
  batch32OverSingle: number;
  /** CPU seconds per wall second during single decode / batch-32 decode (= threads when the cores are ours alone). */
  coresBusy: { decode: number; batch32: number };
}

const binding = loadNative();
const bandwidth = binding.measureReadBandwidth(512 << 20);
console.log(`read bandwidth ${(bandwidth / 1e9).toFixed(1)} GB/s, cpu ${JSON.stringify(binding.cpuFeatures())}`);
const rows: Row[] = [];
for (const preset of presets) {
  const spec = await readModelSpec(await modelFile(preset));
  const c = spec.config;
  const params =
    c.vocabSize * c.dim * (c.tiedEmbeddings ? 1 : 2) +
    c.nLayers * (2 * c.dim * c.dim + 2 * c.dim * (c.dim / c.nHeads) * c.nKvHeads + 3 * c.dim * c.hiddenDim);
  const shape = SHAPE[preset];
  for (const weightFormat of formats) {
    const plans = BATCHES.map((b) => ({ batch: b, stepsPerRound: b === 1 ? shape.decodeSteps : shape.batchSteps }));
    const blocks = Math.max(interleavedBlocks(plans, shape.rounds, 16), Math.ceil(shape.prefill / 16));
    const model = await binding.loadModel({
      config: c,
      files: spec.files,
      tensors: spec.tensors,
      weightFormat,
      numBlocks: blocks,
      maxBatchTokens: Math.max(128 * PROMPT, shape.prefill),
      maxBatchSeqs: 128,
      ...(threads ? { numThreads: threads } : {}),
    });
    // the bandwidth is measured again in every round: on a shared machine what is left to us changes minute to minute
    const bandwidths: number[] = [];
    const rates = await interleavedDecode(model, plans, shape.rounds, () =>
      bandwidths.push(binding.measureReadBandwidth(256 << 20)),
    );
    const bandwidthNow = bandwidths.reduce((a, b) => a + b, 0) / bandwidths.length;
    const boundTokS = bandwidthNow / model.weightBytes; // tied classifier: every weight byte is read once per step
    const single = rates.get(1)!;
    const prefill = await prefillRate(model, shape.prefill);
    const batch: Record<number, number> = {};
    for (const b of BATCHES) batch[b] = rates.get(b)!.tokS;
    const busy32 = rates.get(32)!.coresBusy;
    const decodeTokS = single.tokS;
    rows.push({
      model: preset,
      format: weightFormat,
      kernels: model.kernels,
      threads: model.numThreads,
      params,
      weightMB: model.weightBytes / 2 ** 20,
      bandwidthGBs: bandwidthNow / 1e9,
      boundTokS,
      decodeTokS,
      ofBound: decodeTokS / boundTokS,
      prefillTokS: prefill.tokS,
      batch,
      batch32OverSingle: batch[32] / decodeTokS,
      coresBusy: { decode: single.coresBusy, batch32: busy32 },
    });
    model.dispose();
    const r = rows[rows.length - 1];
    console.log(
      `  ${preset} ${weightFormat}: decode ${r.decodeTokS.toFixed(1)} tok/s (${(100 * r.ofBound).toFixed(0)}% of bound)`,
    );
  }
}

const f = (x: number, w: number, d = 1) => x.toFixed(d).padStart(w);
console.log(
  '\nmodel format kernels  params  weights MB  GB/s  bound tok/s  decode tok/s  %bound  prefill tok/s  batch8  batch32  batch128  b32/single  cores busy (decode, b32)',
);
for (const r of rows) {
  console.log(
    `${r.model.padEnd(5)} ${r.format.padEnd(6)} ${r.kernels.padEnd(7)} ${f(r.params / 1e6, 6)}M ${f(r.weightMB, 10)} ${f(r.bandwidthGBs, 5)} ${f(r.boundTokS, 12)} ${f(r.decodeTokS, 13)} ${f(100 * r.ofBound, 6, 0)}% ${f(r.prefillTokS, 14)} ${f(r.batch[8], 7, 0)} ${f(r.batch[32], 8, 0)} ${f(r.batch[128], 9, 0)} ${f(r.batch32OverSingle, 10)}x  ${r.coresBusy.decode.toFixed(2)}, ${r.coresBusy.batch32.toFixed(2)} of ${r.threads}`,
  );
}
const outDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../results');
mkdirSync(outDir, { recursive: true });
const out = path.join(outDir, `engine-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(
  out,
  JSON.stringify(
    {
      bandwidthBytesPerS: bandwidth,
      cpu: binding.cpuFeatures(),
      threads: threads ?? binding.cpuFeatures().threads,
      rows,
    },
    null,
    2,
  ),
);
console.log(`\nwrote ${out}`);
