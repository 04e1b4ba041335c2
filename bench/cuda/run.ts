/**
 * CUDA backend benchmark (GPU machines only; see docs/cuda.md). A random-weight ~1B Llama
 * (TinyLlama-1.1B shapes) in bf16:
 *   1. single-sequence decode tok/s against the HBM bound = device copy bandwidth / weight bytes
 *      (target: >= 60% of the bound);
 *   2. batched decode throughput at 1, 32 and 256 sequences (32-token prompts, 128 new tokens);
 *   3. the same through bench/cuda/hf_baseline.py (PyTorch + transformers generate) when python3
 *      with torch is there, side by side (target: >= 10x at 256 sequences).
 * Writes bench/results/cuda-<date>.json.  Usage: npx tsx bench/cuda/run.ts [--quick] [--no-hf]
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeModel, NativeTensorSpec } from '../../packages/engine/src/native/native-types.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import { Blocks, buildBatch, Seq } from '../../test/integration/native-harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const CONFIG = {
  dim: 2048,
  hiddenDim: 5632,
  nLayers: quick ? 4 : 22,
  nHeads: 32,
  nKvHeads: 4,
  vocabSize: 32000,
  maxSeqLen: 2048,
  ropeTheta: 10000,
  ropeLayout: 'half' as const,
  normEps: 1e-5,
  tiedEmbeddings: false,
};
const PROMPT = 32,
  NEW = quick ? 32 : 128,
  BATCHES = [1, 32, 256];

/** One file: f32 ones for the norms, then random bf16 (N(0, 0.02)-ish) shared by every matrix. */
function writeWeights(file: string): NativeTensorSpec[] {
  const c = CONFIG,
    hd = c.dim / c.nHeads,
    kv = hd * c.nKvHeads;
  const biggest = Math.max(c.vocabSize * c.dim, c.hiddenDim * c.dim);
  const fd = openSync(file, 'w');
  writeSync(fd, new Uint8Array(new Float32Array(c.dim).fill(1).buffer));
  let x = 0x9e3779b9;
  const chunk = new Uint16Array(1 << 20);
  for (let done = 0; done < biggest; done += chunk.length) {
    for (let i = 0; i < chunk.length; i++) {
      (x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5);
      const v = ((x >>> 0) / 4294967296 - 0.5) * 0.07; // uniform with std ~0.02
      chunk[i] = new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16;
    }
    writeSync(fd, new Uint8Array(chunk.buffer));
  }
  closeSync(fd);
  const norm = (name: string): NativeTensorSpec => ({ name, file: 0, offset: 0, dtype: 'f32', shape: [c.dim] });
  const mat = (name: string, shape: number[]): NativeTensorSpec => ({
    name,
    file: 0,
    offset: c.dim * 4,
    dtype: 'bf16',
    shape,
  });
  const t = [mat('tok_embeddings', [c.vocabSize, c.dim]), norm('norm'), mat('output', [c.vocabSize, c.dim])];
  for (let l = 0; l < c.nLayers; l++) {
    t.push(
      norm(`layers.${l}.attention_norm`),
      norm(`layers.${l}.ffn_norm`),
      mat(`layers.${l}.wq`, [c.dim, c.dim]),
      mat(`layers.${l}.wk`, [kv, c.dim]),
      mat(`layers.${l}.wv`, [kv, c.dim]),
      mat(`layers.${l}.wo`, [c.dim, c.dim]),
      mat(`layers.${l}.w1`, [c.hiddenDim, c.dim]),
      mat(`layers.${l}.w2`, [c.dim, c.hiddenDim]),
      mat(`layers.${l}.w3`, [c.hiddenDim, c.dim]),
    );
  }
  return t;
}

/** Prefill all prompts in one step, then decode NEW tokens each; returns decode tok/s and wall seconds. */
async function run(
  model: NativeModel,
  numSeqs: number,
): Promise<{ decodeTokS: number; totalTokS: number; seconds: number }> {
  const blocks = new Blocks(model);
  const seqs = Array.from(
    { length: numSeqs },
    (_, i) => new Seq(Array.from({ length: PROMPT }, (_, j) => 1 + ((i * 131 + j * 17) % 31000))),
  );
  const t0 = performance.now();
  let work = seqs.map((seq) => ({ seq, n: PROMPT }));
  let r = await model.step(buildBatch(model, blocks, work));
  seqs.forEach((s, i) => ((s.computed += PROMPT), s.tokens.push(r.tokens[i])));
  const t1 = performance.now();
  for (let k = 1; k < NEW; k++) {
    work = seqs.map((seq) => ({ seq, n: 1 }));
    r = await model.step(buildBatch(model, blocks, work));
    seqs.forEach((s, i) => ((s.computed += 1), s.tokens.push(r.tokens[i])));
  }
  const t2 = performance.now();
  return {
    decodeTokS: (numSeqs * (NEW - 1)) / ((t2 - t1) / 1e3),
    totalTokS: (numSeqs * NEW) / ((t2 - t0) / 1e3),
    seconds: (t2 - t0) / 1e3,
  };
}

const binding = loadNative();
if (!binding.hasCuda) throw new Error('this addon was built without CUDA (run `node native/build.mjs` where nvcc is)');
const dir = path.join(os.tmpdir(), 'flotilla-bench-cuda');
mkdirSync(dir, { recursive: true });
const file = path.join(dir, `llama-1b-bf16${quick ? '-quick' : ''}.bin`);
console.log(`writing random weights to ${file} ...`);
const tensors = writeWeights(file);
const bandwidth = binding.measureDeviceBandwidth(1 << 30);
const model = await binding.loadModel({
  config: CONFIG,
  files: [file],
  tensors,
  device: 'cuda',
  maxBatchTokens: 256 * PROMPT,
  maxBatchSeqs: 256,
});
const weightBytes = model.weightBytes,
  boundTokS = bandwidth / weightBytes;
console.log(
  `device copy bandwidth ${(bandwidth / 1e9).toFixed(0)} GB/s; weights ${(model.weightBytes / 2 ** 30).toFixed(2)} GiB; bound ${boundTokS.toFixed(1)} tok/s; kernels ${model.kernels}; ${model.numBlocks} KV blocks`,
);
await run(model, 1); // warm-up (graph capture)
const single = await run(model, 1);
console.log(
  `single-sequence decode: ${single.decodeTokS.toFixed(1)} tok/s = ${((100 * single.decodeTokS) / boundTokS).toFixed(0)}% of the bandwidth bound (target >= 60%)`,
);
const batched: Record<number, { decodeTokS: number; totalTokS: number; seconds: number; hfTokS?: number }> = {};
for (const n of BATCHES) {
  await run(model, Math.min(n, 8));
  batched[n] = await run(model, n);
  console.log(
    `batch ${String(n).padStart(3)}: decode ${batched[n].decodeTokS.toFixed(0)} tok/s, end to end ${batched[n].totalTokS.toFixed(0)} tok/s`,
  );
}
model.dispose();

if (!process.argv.includes('--no-hf')) {
  const py = spawnSync(
    'python3',
    [
      path.join(here, 'hf_baseline.py'),
      '--json',
      '--layers',
      String(CONFIG.nLayers),
      '--prompt',
      String(PROMPT),
      '--new',
      String(NEW),
      '--batches',
      BATCHES.join(','),
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const line = py.stdout?.trim().split('\n').pop();
  if (py.status === 0 && line) {
    const hf = JSON.parse(line) as { impl: string; results: Record<string, number> };
    for (const n of BATCHES) {
      batched[n].hfTokS = hf.results[n];
      console.log(
        `batch ${String(n).padStart(3)}: flotilla ${batched[n].totalTokS.toFixed(0)} vs ${hf.impl} ${hf.results[n].toFixed(0)} tok/s = ${(batched[n].totalTokS / hf.results[n]).toFixed(1)}x (target at 256: >= 10x)`,
      );
    }
  } else {
    console.log('hf_baseline.py did not run (no python3 with torch?); see its stderr above');
  }
}
const out = path.join(here, '..', 'results');
if (!existsSync(out)) mkdirSync(out, { recursive: true });
const result = {
  date: new Date().toISOString(),
  config: CONFIG,
  prompt: PROMPT,
  newTokens: NEW,
  bandwidth,
  weightBytes,
  boundTokS,
  single,
  batched,
};
const target = path.join(out, `cuda-${result.date.slice(0, 10)}.json`);
writeFileSync(target, JSON.stringify(result, null, 2));
console.log(`wrote ${target}`);
