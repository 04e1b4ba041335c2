/**
 * Engine benchmark: random-weight Llama models of ~15M, ~110M (and ~1.1B with --full) parameters in
 * f32, int8 and int4; single-sequence decode and prefill tokens/s, batched decode at 1/8/32/128
 * sequences, and beside each decode figure the bandwidth bound (read bandwidth measured in this run /
 * weight bytes read per step). Prints a table and writes bench/results/engine-<time>.json.
 *
 *   npx tsx bench/engine/run.ts [--full] [--models 15m,110m] [--formats f32,int8,int4] [--threads N]
 */
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeRandomModel, MODEL_PRESETS } from '../../packages/engine/src/model-loader/random-model.js';
import { readModelSpec } from '../../packages/engine/src/model-loader/read-model-spec.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import type { NativeWeightFormat } from '../../packages/engine/src/native/native-types.js';
import { decodeRate, prefillRate, PROMPT } from './measure.js';

type Preset = keyof typeof MODEL_PRESETS;
const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
};
const full = args.includes('--full');
const presets = opt('models', full ? '15m,110m,1b' : '15m,110m').split(',') as Preset[];
const formats = opt('formats', 'f32,int8,int4').split(',') as NativeWeightFormat[];
const threads = Number(opt('threads', '0')) || undefined;
const BATCHES = [1, 8, 32, 128];
const SHAPE: Record<Preset, { decodeSteps: number; batchSteps: number; prefill: number }> = {
  '15m': { decodeSteps: 64, batchSteps: 8, prefill: 256 },
  '110m': { decodeSteps: 24, batchSteps: 4, prefill: 256 },
  '1b': { decodeSteps: 6, batchSteps: 2, prefill: 64 },
};

async function modelFile(preset: Preset): Promise<string> {
  const dir = path.join(os.tmpdir(), 'flotilla-bench-models', preset);
  const file = path.join(dir, `${preset}.bin`);
  if (existsSync(file) && existsSync(path.join(dir, 'tokenizer.bin'))) return file;
  console.log(`writing random-weight ${preset} model to ${dir} ...`);
  return makeRandomModel(MODEL_PRESETS[preset], { format: 'llama2c', dir, name: preset, seed: 1 });
}

interface Row {
  model: Preset; format: string; kernels: string; threads: number; params: number; weightMB: number; bandwidthGBs: number;
  boundTokS: number; decodeTokS: number; ofBound: number; prefillTokS: number;
  batch: Record<number, number>; batch32OverSingle: number;
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
  const params = c.vocabSize * c.dim * (c.tiedEmbeddings ? 1 : 2) + c.nLayers * (2 * c.dim * c.dim + 2 * c.dim * (c.dim / c.nHeads) * c.nKvHeads + 3 * c.dim * c.hiddenDim);
  const shape = SHAPE[preset];
  for (const weightFormat of formats) {
    const blocks = Math.ceil((PROMPT + shape.batchSteps + 2) / 16) * 128 + 64;
    const model = await binding.loadModel({ config: c, files: spec.files, tensors: spec.tensors, weightFormat, numBlocks: blocks,
      maxBatchTokens: Math.max(128 * PROMPT, shape.prefill), maxBatchSeqs: 128, ...(threads ? { numThreads: threads } : {}) });
    // measured again right before decoding: on a shared machine the bandwidth left to us changes minute to minute
    const bandwidthNow = binding.measureReadBandwidth(256 << 20);
    const boundTokS = bandwidthNow / model.weightBytes; // tied classifier: every weight byte is read once per step
    const single = await decodeRate(model, 1, shape.decodeSteps);
    const prefill = await prefillRate(model, shape.prefill);
    const batch: Record<number, number> = {};
    let busy32 = 0;
    for (const b of BATCHES) {
      const r = b === 1 ? single : await decodeRate(model, b, shape.batchSteps);
      batch[b] = r.tokS;
      if (b === 32) busy32 = r.coresBusy;
    }
    const decodeTokS = single.tokS;
    rows.push({ model: preset, format: weightFormat, kernels: model.kernels, threads: model.numThreads, params,
      weightMB: model.weightBytes / 2 ** 20, bandwidthGBs: bandwidthNow / 1e9, boundTokS, decodeTokS, ofBound: decodeTokS / boundTokS, prefillTokS: prefill.tokS,
      batch, batch32OverSingle: batch[32] / decodeTokS, coresBusy: { decode: single.coresBusy, batch32: busy32 } });
    model.dispose();
    const r = rows[rows.length - 1];
    console.log(`  ${preset} ${weightFormat}: decode ${r.decodeTokS.toFixed(1)} tok/s (${(100 * r.ofBound).toFixed(0)}% of bound)`);
  }
}

const f = (x: number, w: number, d = 1) => x.toFixed(d).padStart(w);
console.log('\nmodel format  params  weights MB  GB/s  bound tok/s  decode tok/s  %bound  prefill tok/s  batch8  batch32  batch128  b32/single  cores busy (decode, b32)');
for (const r of rows) {
  console.log(`${r.model.padEnd(5)} ${r.format.padEnd(6)} ${f(r.params / 1e6, 6)}M ${f(r.weightMB, 10)} ${f(r.bandwidthGBs, 5)} ${f(r.boundTokS, 12)} ${f(r.decodeTokS, 13)} ${f(100 * r.ofBound, 6, 0)}% ${f(r.prefillTokS, 14)} ${f(r.batch[8], 7, 0)} ${f(r.batch[32], 8, 0)} ${f(r.batch[128], 9, 0)} ${f(r.batch32OverSingle, 10)}x  ${r.coresBusy.decode.toFixed(2)}, ${r.coresBusy.batch32.toFixed(2)} of ${r.threads}`);
}
const outDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../results');
mkdirSync(outDir, { recursive: true });
const out = path.join(outDir, `engine-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(out, JSON.stringify({ bandwidthBytesPerS: bandwidth, cpu: binding.cpuFeatures(), threads: threads ?? binding.cpuFeatures().threads, rows }, null, 2));
console.log(`\nwrote ${out}`);
