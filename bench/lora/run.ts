/**
 * Multi-LoRA benchmark on the random-weight 110M model: a batch of 32 sequences stepped with no adapter,
 * and with 1, 4 and 16 rank-8 adapters (all seven modules) mixed across the batch — decode steps (32
 * tokens) and prefill-chunk steps (32 × 16 tokens) — in interleaved rounds (order reversed every other
 * round), each ratio to the base taken within its round, so they hold on a shared machine; then adapter load and unload latency (PEFT directory → resident slot).
 * Prints a table and writes bench/results/lora-<time>.json. Target: 16 adapters ≥ 80% of the base.
 *
 *   npx tsx bench/lora/run.ts [--rounds 5] [--steps 4] [--threads N] [--rank 8] [--dtype f32|f16|bf16]
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readPeftAdapter } from '../../packages/engine/src/lora/peft-adapter.js';
import { makeRandomModel, MODEL_PRESETS } from '../../packages/engine/src/model-loader/random-model.js';
import { readModelSpec } from '../../packages/engine/src/model-loader/read-model-spec.js';
import { writeRandomAdapter } from '../../packages/engine/src/model-loader/writers/peft-writer.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import type { NativeModel, NativeStepBatch } from '../../packages/engine/src/native/native-types.js';
import { makeSeqs, stepBatch } from '../engine/decode-batch.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    steps: { type: 'string', default: '4' },
    threads: { type: 'string', default: '0' },
    rank: { type: 'string', default: '8' },
    dtype: { type: 'string', default: 'f32' },
  },
});
const ROUNDS = Number(args.rounds);
const STEPS = Number(args.steps);
const RANK = Number(args.rank);
const DTYPE = args.dtype as 'f32' | 'f16' | 'bf16';
if (!['f32', 'f16', 'bf16'].includes(DTYPE)) throw new Error(`--dtype must be f32, f16 or bf16, got ${DTYPE}`);
const BATCH = 32;
const CONTEXT = 64;
const CHUNK = 16;
const MIXES = [0, 1, 4, 16]; // adapters across the batch (0: none)

async function modelFile(): Promise<string> {
  const dir = path.join(os.tmpdir(), 'flotilla-bench-models', '110m');
  const file = path.join(dir, '110m.bin');
  if (existsSync(file) && existsSync(path.join(dir, 'tokenizer.bin'))) return file;
  console.log(`writing random-weight 110m model to ${dir} ...`);
  return makeRandomModel(MODEL_PRESETS['110m'], { format: 'llama2c', dir, name: '110m', seed: 1 });
}

async function adapterDirs(config: Parameters<typeof writeRandomAdapter>[1]): Promise<string[]> {
  const root = path.join(os.tmpdir(), 'flotilla-bench-models', `110m-lora-r${RANK}-${DTYPE}`);
  const dirs = Array.from({ length: 16 }, (_, i) => path.join(root, `a${i}`));
  for (const [i, dir] of dirs.entries()) {
    if (existsSync(path.join(dir, 'adapter_model.safetensors'))) continue;
    mkdirSync(dir, { recursive: true });
    await writeRandomAdapter(dir, config, { rank: RANK, seed: 1000 + i, dtype: DTYPE });
  }
  return dirs;
}

function withSlots(b: NativeStepBatch, mix: number): NativeStepBatch {
  return mix === 0 ? b : { ...b, loraSlots: Int32Array.from({ length: b.numSeqs }, (_, s) => s % mix) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

const spec = await readModelSpec(await modelFile());
const dirs = await adapterDirs(spec.config);
const binding = loadNative();
const blocksPerSeq = Math.ceil((CONTEXT + CHUNK + 1) / 16);
const model: NativeModel = await binding.loadModel({
  config: spec.config,
  files: spec.files,
  tensors: spec.tensors,
  numBlocks: 2 * BATCH * blocksPerSeq,
  maxBatchTokens: BATCH * CHUNK,
  maxBatchSeqs: BATCH,
  maxLoras: 16,
  maxLoraRank: RANK,
  ...(Number(args.threads) > 0 ? { numThreads: Number(args.threads) } : {}),
});
console.log(
  `110m (${model.kernels}, ${model.numThreads} threads), 16 ${DTYPE} adapters of rank ${RANK} on q,k,v,o,gate,up,down`,
);

// Load latency: header read + checks (TS) and the native fill of a slot; unload of an idle slot.
const loadMs: number[] = [];
const unloadMs: number[] = [];
for (const [i, dir] of dirs.entries()) {
  const t0 = performance.now();
  await model.loadLora!(i, readPeftAdapter(dir, spec.config, RANK).native);
  loadMs.push(performance.now() - t0);
}
for (let r = 0; r < 4; r++) {
  const t0 = performance.now();
  await model.unloadLora!(15);
  unloadMs.push(performance.now() - t0);
  await model.loadLora!(15, readPeftAdapter(dirs[15]!, spec.config, RANK).native);
}

// Context: every sequence prefilled with CONTEXT tokens (base) in its own blocks.
const V = spec.config.vocabSize;
const seqs = makeSeqs(BATCH, blocksPerSeq);
for (let at = 0; at < CONTEXT; at += CHUNK) {
  await model.step(stepBatch(seqs, CHUNK, 16, blocksPerSeq, V));
  for (const s of seqs) s.computed += CHUNK;
}
// Decode steps rewrite position CONTEXT (the same work each time); prefill steps the chunk after it.
const decode = stepBatch(seqs, 1, 16, blocksPerSeq, V);
const prefill = stepBatch(seqs, CHUNK, 16, blocksPerSeq, V);
const rates: Record<string, Record<number, number[]>> = { decode: {}, prefill: {} };
for (const mix of MIXES) (rates.decode![mix] = []), (rates.prefill![mix] = []);
await model.step(withSlots(decode, 16)); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  for (const mix of r % 2 ? [...MIXES].reverse() : MIXES) {
    for (const [kind, batch] of [
      ['decode', decode],
      ['prefill', prefill],
    ] as const) {
      const b = withSlots(batch, mix);
      const t0 = performance.now();
      for (let i = 0; i < STEPS; i++) await model.step(b);
      rates[kind]![mix]!.push((STEPS * b.numTokens) / ((performance.now() - t0) / 1000));
    }
  }
}

// Ratios to the base are taken within each round (the same minute of a shared machine), then the median.
const ofBase = (kind: 'decode' | 'prefill', mix: number) =>
  median(rates[kind]![mix]!.map((x, r) => x / rates[kind]![0]![r]!));
const rows = MIXES.map((mix) => ({
  adapters: mix,
  decodeTokS: median(rates.decode![mix]!),
  decodeOfBase: ofBase('decode', mix),
  prefillTokS: median(rates.prefill![mix]!),
  prefillOfBase: ofBase('prefill', mix),
}));
console.log(
  '\nadapters  decode tok/s  of base   prefill tok/s  of base   (batch 32; medians of %d rounds, ratios per round)',
  ROUNDS,
);
for (const r of rows) {
  console.log(
    `${String(r.adapters || 'none').padStart(8)}  ${r.decodeTokS.toFixed(1).padStart(12)}  ${(100 * r.decodeOfBase).toFixed(1).padStart(6)}%  ${r.prefillTokS.toFixed(1).padStart(13)}  ${(100 * r.prefillOfBase).toFixed(1).padStart(6)}%`,
  );
}
const latency = { loadMsMedian: median(loadMs), loadMsMax: Math.max(...loadMs), unloadMsMedian: median(unloadMs) };
console.log(
  `\nadapter load (PEFT dir → slot, rank ${RANK}, 7 modules × 12 layers): median ${latency.loadMsMedian.toFixed(1)} ms, max ${latency.loadMsMax.toFixed(1)} ms; unload median ${latency.unloadMsMedian.toFixed(2)} ms`,
);
const outDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../results');
mkdirSync(outDir, { recursive: true });
const out = path.join(outDir, `lora-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(
  out,
  JSON.stringify(
    {
      kernels: model.kernels,
      threads: model.numThreads,
      rank: RANK,
      dtype: DTYPE,
      rounds: ROUNDS,
      rows,
      latency,
      loadMs,
    },
    null,
    2,
  ),
);
console.log(`wrote ${out}`);
model.dispose();
