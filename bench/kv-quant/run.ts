/**
 * The quantized KV cache (issue 26, item 3; kv_cache_dtype, native/src/core/kv-type.h), side by side
 * in one run:
 *   1. perplexity of the bundled model (models/flotilla-stories/target) on held-out text with the KV
 *      pool in f32, f16 and int8. heldout.txt is the held-out split (valid.txt, 20 stories, one a line)
 *      of `python3 tools/train/make_corpus.py --stories 400 --seed 26026`: the grammar the model was
 *      trained on (its only language), a seed other than the training corpus's. Each story is
 *      prefilled in chunks of --chunk tokens, so later chunks read earlier ones back from the pool;
 *   2. on a random ~110M model (stories110M shape, tools/make-random-model.ts): the KV blocks and whole
 *      sequences of --seq-len tokens that a --kv-mb budget holds, f16 against int8;
 *   3. decode tok/s at a batch of --batch sequences, each with a --prompt token context, over --steps
 *      greedy steps: the f16 and int8 pools take turns step by step (decode.ts), so machine noise
 *      lands on both alike; ratio int8 / f16 in wall time, CPU time and median step.
 * Prints a table and writes bench/results/kv-quant-<timestamp>.json.
 *
 *   npx tsx bench/kv-quant/run.ts            # ~3-5 minutes on 2 idle cores
 *   npx tsx bench/kv-quant/run.ts --quick    # smoke run: short contexts, one round
 * Options: --kv-mb N (default 1024) --seq-len N (default 1024) --batch N (32) --prompt N (384)
 *   --steps N (64) --chunk N (32) --threads N (every core) --weights f32|f16 (110M weights, default f16)
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type LoadedModel,
  loadModel,
  MODEL_PRESETS,
  makeRandomModel,
} from '../../packages/engine/src/model-loader/index.js';
import { decodeSideBySide } from './decode.js';
import { perplexity } from './perplexity.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'kv-mb': { type: 'string', default: '1024' },
    'seq-len': { type: 'string', default: '1024' },
    batch: { type: 'string', default: '32' },
    prompt: { type: 'string' },
    steps: { type: 'string' },
    chunk: { type: 'string', default: '32' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    weights: { type: 'string', default: 'f16' },
  },
});
const num = (v: string | undefined, dflt: number) => {
  const n = Number(v ?? dflt);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`not a positive integer: ${v}`);
  return n;
};
const kvBytes = num(values['kv-mb'], 1024) * 2 ** 20;
const seqLen = num(values['seq-len'], 1024);
const batch = num(values.batch, 32);
const promptLen = num(values.prompt, values.quick ? 64 : 384);
const steps = num(values.steps, values.quick ? 8 : 64);
const chunk = num(values.chunk, 32);
const numThreads = num(values.threads, os.availableParallelism());
const weights = values.weights;
if (weights !== 'f32' && weights !== 'f16') throw new Error('--weights must be f32 or f16');
const KV = ['f32', 'f16', 'int8'] as const;

// 1. perplexity on held-out text -------------------------------------------------------------------
const bundled = path.join(root, 'models/flotilla-stories/target');
const texts = readFileSync(path.join(here, 'heldout.txt'), 'utf8')
  .split('\n')
  .map((t) => t.trim())
  .filter(Boolean);
const ppl: Record<string, { ppl: number; tokens: number }> = {};
for (const kvDtype of KV) {
  const m = await loadModel(bundled, { kvDtype, numThreads, device: 'cpu', numBlocks: 64 });
  try {
    const ids = texts.map((t) => m.tokenizer.encode(t, { addBos: true }));
    ppl[kvDtype] = await perplexity(m.model, ids, chunk);
  } finally {
    m.dispose();
  }
}
console.log(
  `\n1. ${bundled} on ${texts.length} held-out stories (${ppl.f32!.tokens} scored tokens, chunks of ${chunk})`,
);
console.log('   kv        perplexity   vs f32');
for (const k of KV)
  console.log(
    `   ${k.padEnd(8)}  ${ppl[k]!.ppl.toFixed(5).padStart(10)}   ${(100 * (ppl[k]!.ppl / ppl.f32!.ppl - 1)).toFixed(4)}%`,
  );

// 2. and 3. on the random 110M model ---------------------------------------------------------------
const modelDir = path.join(root, '.tmp', 'bench-models', '110m');
const modelPath = existsSync(path.join(modelDir, 'model.bin'))
  ? path.join(modelDir, 'model.bin')
  : await makeRandomModel(MODEL_PRESETS['110m'], { format: 'llama2c', dir: modelDir, seed: 1 });
const loaded: Record<string, LoadedModel> = {};
for (const kvDtype of ['f16', 'int8'] as const)
  loaded[kvDtype] = await loadModel(modelPath, {
    kvDtype,
    kvCacheBytes: kvBytes,
    weightFormat: weights,
    numThreads,
    device: 'cpu',
    maxBatchTokens: 2048,
    maxBatchSeqs: Math.max(batch, 64),
  });
const cap = Object.fromEntries(
  Object.entries(loaded).map(([k, m]) => {
    const blocks = m.model.numBlocks;
    return [
      k,
      {
        blocks,
        tokens: blocks * m.model.blockSize,
        sequences: Math.floor(blocks / Math.ceil(seqLen / m.model.blockSize)),
      },
    ];
  }),
);
console.log(`\n2. random 110M (${modelPath}), KV budget ${kvBytes / 2 ** 20} MiB, sequences of ${seqLen} tokens`);
console.log('   kv     blocks   tokens   sequences');
for (const [k, c] of Object.entries(cap))
  console.log(
    `   ${k.padEnd(5)} ${String(c.blocks).padStart(7)} ${String(c.tokens).padStart(8)} ${String(c.sequences).padStart(10)}`,
  );
console.log(`   int8 / f16: ${(cap.int8!.sequences / cap.f16!.sequences).toFixed(3)}x sequences`);

let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / 2 ** 24;
const vocab = MODEL_PRESETS['110m'].vocabSize;
const prompts = Array.from({ length: batch }, () =>
  Array.from({ length: promptLen }, (_, i) => (i === 0 ? 1 : 3 + Math.floor(rand() * (vocab - 3)))),
);
const decode = await decodeSideBySide({ f16: loaded.f16!.model, int8: loaded.int8!.model }, prompts, steps, 2048);
for (const m of Object.values(loaded)) m.dispose();
const same = decode.f16!.firstSeq.filter((t, i) => t === decode.int8!.firstSeq[i]).length;
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
console.log(
  `\n3. decode at batch ${batch}, context ${promptLen}..${promptLen + steps}, ${steps} steps taken in turns, ${weights} weights, ${numThreads} threads (load average ${os.loadavg()[0]!.toFixed(1)})`,
);
console.log('   kv     tok/s (wall)   tok/s (CPU time)   median step ms');
for (const k of ['f16', 'int8'])
  console.log(
    `   ${k.padEnd(5)} ${decode[k]!.tokPerS.toFixed(1).padStart(12)} ${decode[k]!.tokPerCpuS.toFixed(1).padStart(16)} ${median(decode[k]!.stepMs).toFixed(1).padStart(16)}`,
  );
console.log(
  `   int8 / f16: ${(decode.int8!.tokPerS / decode.f16!.tokPerS).toFixed(3)}x wall, ${(decode.int8!.tokPerCpuS / decode.f16!.tokPerCpuS).toFixed(3)}x CPU time, ${(median(decode.f16!.stepMs) / median(decode.int8!.stepMs)).toFixed(3)}x by median step   (first sequence: ${same} of ${steps + 1} greedy tokens the same)`,
);

const out = path.join(root, 'bench', 'results');
mkdirSync(out, { recursive: true });
const file = path.join(out, `kv-quant-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(
  file,
  JSON.stringify(
    {
      args: { kvBytes, seqLen, batch, promptLen, steps, chunk, numThreads, weights },
      loadAverage: os.loadavg(),
      perplexity: ppl,
      capacity: cap,
      decode: Object.fromEntries(
        Object.entries(decode).map(([k, d]) => [k, { tokPerS: d.tokPerS, tokPerCpuS: d.tokPerCpuS, stepMs: d.stepMs }]),
      ),
    },
    null,
    2,
  ),
);
console.log(`\nwrote ${path.relative(root, file)}`);
