/**
 * Engine serving benchmark (issue 4), on a random-weight Llama model, same engine code, same run:
 *   1. continuous batching vs static batching (batches of 8, padded, each waiting for its slowest)
 *      vs one request at a time — output tok/s, TTFT and TPOT p50/p99, on Poisson arrivals with mixed
 *      prompt and output lengths. Targets: ≥ 5x static, ≥ 10x one-at-a-time.
 *   2. prefix caching on vs off, every prompt opening with the same 512-token system prompt — TTFT p50.
 *      Target: ≥ 5x lower with caching.
 * and, beside 1., this machine's ceiling (ceiling.ts): the best decode- and prefill-shaped step rates
 * with no long contexts, i.e. the most output tok/s any batching policy could reach on this workload —
 * printed as ratios over the two baselines, so a run shows whether a target is reachable here at all.
 * Prints a table and writes bench/results/engine-serving-<timestamp>.json.
 *
 *   npx tsx bench/engine-serving/run.ts                 # the issue's ~110M model (stories110M shape): ~5 minutes on 2 idle cores (much longer on a loaded machine)
 *   npx tsx bench/engine-serving/run.ts --preset small  # a ~15M model (stories15M shape): ~1 minute
 *   npx tsx bench/engine-serving/run.ts --quick         # smoke run: fewer requests
 *   node --cpu-prof --import tsx bench/engine-serving/run.ts --continuous-only   # profile the continuous mode alone
 * Options: --requests N --baseline-requests N --rate R (req/s) --prefix-requests N --prefix-rate R --threads N (default: every core) --seed S
 *   --device cpu|cuda (default cpu; cuda on a machine with an NVIDIA GPU and a CUDA build, docs/cuda.md)
 *   --kv-dtype f32|f16|int8 (the KV pool's element type, default f16: decode attention streams the pool from
 *   memory in 2 KB pieces per head and block, and at f16 that takes half as long; vLLM's CPU backend
 *   also keeps K/V in 16 bits) --block-size N (tokens per KV block, default 16)
 *
 * Static batching and one-at-a-time serve the first `--baseline-requests` requests of the same workload:
 * their tokens/s do not depend on how many requests wait behind them (a batch of 8, or one sequence, runs
 * at the same speed whatever the queue), while continuous batching's does — it batches whatever has
 * arrived — so it gets the whole workload, as a serving benchmark at saturation would (vLLM's throughput
 * benchmark submits its whole dataset at once). This keeps the run to minutes: one-at-a-time over the
 * whole workload alone would take ~10 minutes on 2 cores.
 *
 * The serving rate is set well above what the engine can serve (the offered load, rate x mean output
 * tokens, is printed beside the result): continuous batching then measures the engine's capacity, not the
 * arrival rate. All modes use the same thread count.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import {
  loadModel,
  makeRandomModel,
  MODEL_PRESETS,
  type RandomModelConfig,
} from '../../packages/engine/src/model-loader/index.js';
import { ceilingOutputTokPerS, measureCeiling } from './ceiling.js';
import { runContinuous, runSequential, runStatic, summarize, type ModeResult, type StepTally } from './modes.js';
import { makeWorkload, randomTokens, rng } from './workload.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

/**
 * Model shapes and the workload sized so a run fits a few minutes on 2 cores (one-at-a-time dominates:
 * requests x mean output / single-sequence decode rate). Serving rates offer several times the
 * engine's capacity (110m on 2 AVX-512 cores: ~70 tok/s single-sequence decode, ~500-770 tok/s at
 * batch 32-128; offered 64 req/s x ~140 mean output tokens = ~9,000 tok/s, all 192 requests arrived
 * within ~3 s). KV sized so the running batch is bounded by the scheduler, not by blocks.
 */
const PRESETS = {
  small: {
    model: { ...MODEL_PRESETS['15m'], maxSeqLen: 1024 },
    requests: 64,
    baselineRequests: 64,
    rate: 64,
    prefixRequests: 32,
    prefixRate: 4,
    kvBytes: 256 << 20,
  },
  '110m': {
    model: MODEL_PRESETS['110m'],
    requests: 192,
    baselineRequests: 32,
    rate: 64,
    prefixRequests: 24,
    prefixRate: 1,
    kvBytes: 4 * 2 ** 30,
  },
} satisfies Record<
  string,
  {
    model: RandomModelConfig;
    requests: number;
    baselineRequests: number;
    rate: number;
    prefixRequests: number;
    prefixRate: number;
    kvBytes: number;
  }
>;

const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: '110m' },
    quick: { type: 'boolean', default: false },
    requests: { type: 'string' },
    'baseline-requests': { type: 'string' },
    rate: { type: 'string' },
    'prefix-requests': { type: 'string' },
    'prefix-rate': { type: 'string' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    seed: { type: 'string', default: '1' },
    'continuous-only': { type: 'boolean', default: false },
    'kv-dtype': { type: 'string', default: 'f16' },
    'block-size': { type: 'string', default: '16' },
    device: { type: 'string', default: 'cpu' },
  },
});
const presetName = values.preset as keyof typeof PRESETS;
const preset = PRESETS[presetName];
if (!preset) throw new Error(`--preset must be one of ${Object.keys(PRESETS).join(', ')}`);
const scale = values.quick ? 0.375 : 1;
const requests = Number(values.requests ?? Math.round(preset.requests * scale));
const baselineRequests = Math.min(
  requests,
  Number(values['baseline-requests'] ?? Math.round(preset.baselineRequests * scale)),
);
const rate = Number(values.rate ?? preset.rate);
const prefixRequests = Number(values['prefix-requests'] ?? Math.round(preset.prefixRequests * scale));
const prefixRate = Number(values['prefix-rate'] ?? preset.prefixRate);
const numThreads = Number(values.threads);
const kvDtype = values['kv-dtype'];
if (kvDtype !== 'f32' && kvDtype !== 'f16' && kvDtype !== 'int8')
  throw new Error('--kv-dtype must be f32, f16 or int8');
const seed = Number(values.seed);
const blockSize = Number(values['block-size']);
const device = values.device;
if (device !== 'cpu' && device !== 'cuda') throw new Error('--device must be cpu or cuda');
const vocabSize = preset.model.vocabSize;

const modelDir = path.join(root, '.tmp', 'bench-models', presetName);
const modelPath = existsSync(path.join(modelDir, 'model.bin'))
  ? path.join(modelDir, 'model.bin')
  : await makeRandomModel(preset.model, { format: 'llama2c', dir: modelDir, seed: 1 });
const loaded = await loadModel(modelPath, {
  numThreads,
  device,
  kvCacheBytes: preset.kvBytes,
  kvDtype,
  blockSize,
  maxBatchTokens: 2048,
  maxBatchSeqs: 256,
});
const params =
  (loaded.spec.config.dim * loaded.spec.config.dim * 4 + loaded.spec.config.dim * loaded.spec.config.hiddenDim * 3) *
    loaded.spec.config.nLayers +
  loaded.spec.config.vocabSize * loaded.spec.config.dim;
console.log(
  `model: ${presetName} (${(params / 1e6).toFixed(0)}M params, random weights, ${loaded.model.backend}/${loaded.model.kernels}, ${numThreads} thread(s)), ` +
    `${loaded.model.numBlocks} KV blocks of ${loaded.model.blockSize} (${kvDtype}); load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} on ${os.cpus().length} cores`,
);
const loadAtStart = os.loadavg();

async function withEngine<T>(
  opts: { maxNumSeqs?: number; enablePrefixCaching?: boolean },
  fn: (e: LLMEngine) => Promise<T>,
): Promise<[T, LLMEngine, NodeJS.CpuUsage, StepTally]> {
  const engine = await LLMEngine.create({ model: loaded, ...opts });
  const tally: StepTally = { steps: 0, seqs: 0, ms: 0 };
  engine.onEvent((e) => {
    if (e.type !== 'step') return;
    tally.steps++;
    tally.seqs += e.numSeqs;
    tally.ms += e.durationMs;
  });
  const cpu0 = process.cpuUsage();
  try {
    return [await fn(engine), engine, process.cpuUsage(cpu0), tally];
  } finally {
    await engine.dispose();
  }
}

// A chat-like mix: outputs longer than prompts on average.
const promptLen: [number, number] = [16, 128];
const outputLen: [number, number] = [32, 256];
const serving = makeWorkload({ requests, ratePerS: rate, promptLen, outputLen, vocabSize, seed });
const baseline = serving.slice(0, baselineRequests);
const results: ModeResult[] = [];
for (const [mode, opts, fn] of [
  ['continuous batching', {}, (e: LLMEngine) => runContinuous(e, serving)],
  ['static batching (8)', { maxNumSeqs: 8 }, (e: LLMEngine) => runStatic(e, baseline, 8, 3)],
  ['one at a time', { maxNumSeqs: 1 }, (e: LLMEngine) => runSequential(e, baseline)],
] as const) {
  if (values['continuous-only'] && mode !== 'continuous batching') continue;
  process.stdout.write(`running ${mode} ...`);
  const [timings, engine, cpu, tally] = await withEngine(opts, fn);
  results.push(summarize(mode, timings, engine, cpu, tally));
  console.log(` ${(results.at(-1)!.wallMs / 1000).toFixed(1)} s`);
}

let ceiling: Awaited<ReturnType<typeof measureCeiling>> | null = null;
if (!values['continuous-only']) {
  process.stdout.write('measuring the ceiling ...');
  const t = performance.now();
  [ceiling] = await withEngine({ enablePrefixCaching: false }, (e) =>
    measureCeiling(e, Math.min(requests, 256), vocabSize, seed + 3),
  );
  console.log(` ${((performance.now() - t) / 1000).toFixed(1)} s`);
}

const system = randomTokens(512, vocabSize, rng(seed + 7));
const prefixLoad = makeWorkload({
  requests: prefixRequests,
  ratePerS: prefixRate,
  promptLen: [16, 64],
  outputLen: [16, 16],
  vocabSize,
  seed: seed + 1,
  sharedPrefix: system,
});
const prefix: ModeResult[] = [];
for (const caching of values['continuous-only'] ? [] : [true, false]) {
  const mode = `prefix caching ${caching ? 'on' : 'off'}`;
  process.stdout.write(`running ${mode} ...`);
  const [timings, engine, cpu, tally] = await withEngine({ enablePrefixCaching: caching }, (e) =>
    runContinuous(e, prefixLoad),
  );
  prefix.push(summarize(mode, timings, engine, cpu, tally));
  console.log(` ${(prefix.at(-1)!.wallMs / 1000).toFixed(1)} s`);
}
if (values['continuous-only']) {
  const r = results[0]!;
  console.log(
    `continuous: ${r.outputTokPerS.toFixed(1)} tok/s, ${r.steps} steps, mean batch ${r.meanBatch.toFixed(1)}, ` +
      `${((100 * r.stepMs) / r.wallMs).toFixed(0)}% of the wall in runner.execute, ${((r.wallMs - r.stepMs) / r.steps).toFixed(2)} ms/step outside it`,
  );
  loaded.dispose();
  process.exit(0);
}
loaded.dispose();

const [cont, stat, seq] = results as [ModeResult, ModeResult, ModeResult];
const promptTokens = serving.reduce((s, r) => s + r.promptTokenIds.length, 0);
const ceilingTokPerS = ceilingOutputTokPerS(
  ceiling!,
  promptTokens,
  serving.reduce((s, r) => s + r.outputTokens, 0),
);
const ratios = {
  continuousOverStatic: cont.outputTokPerS / stat.outputTokPerS,
  continuousOverSequential: cont.outputTokPerS / seq.outputTokPerS,
  perCpuSecondContinuousOverStatic: cont.outputTokPerCpuS / stat.outputTokPerCpuS,
  perCpuSecondContinuousOverSequential: cont.outputTokPerCpuS / seq.outputTokPerCpuS,
  prefixTtftP50OffOverOn: prefix[1]!.ttftP50Ms / prefix[0]!.ttftP50Ms,
};
const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-').padStart(10);
const meanOut = serving.reduce((s, r) => s + r.outputTokens, 0) / serving.length;
const arrivalSpanS = serving.at(-1)!.arrivalMs / 1000;
console.log(
  `\n${requests} requests, Poisson ${rate}/s (all arrived by ${arrivalSpanS.toFixed(1)} s), prompts ${promptLen.join('-')} tokens, outputs ${outputLen.join('-')} tokens ` +
    `(mean ${meanOut.toFixed(0)}; greedy, ignoreEos); offered load ${(rate * meanOut).toFixed(0)} output tok/s; ${numThreads} thread(s) in every mode; ` +
    `static and one-at-a-time serve the first ${baselineRequests}`,
);
console.log(
  `${'mode'.padEnd(24)}${'tok/s'.padStart(10)}${'tok/CPU-s'.padStart(10)}${'TTFT p50'.padStart(10)}${'TTFT p99'.padStart(10)}${'TPOT p50'.padStart(10)}${'TPOT p99'.padStart(10)}${'preempt'.padStart(10)}${'steps'.padStart(8)}${'mean b'.padStart(8)}${'in step'.padStart(9)}  (ms)`,
);
for (const r of results) {
  console.log(
    `${r.mode.padEnd(24)}${f(r.outputTokPerS)}${f(r.outputTokPerCpuS)}${f(r.ttftP50Ms, 0)}${f(r.ttftP99Ms, 0)}${f(r.tpotP50Ms)}${f(r.tpotP99Ms)}${f(r.preemptions, 0)}` +
      `${String(r.steps).padStart(8)}${r.meanBatch.toFixed(1).padStart(8)}${`${((100 * r.stepMs) / r.wallMs).toFixed(0)}%`.padStart(9)}`,
  );
}
console.log(
  `('in step': share of the wall time inside runner.execute — batch arrays + native step; the rest is scheduling, detokenizing, streaming and idle waiting for arrivals)`,
);
console.log(
  `continuous / static: ${ratios.continuousOverStatic.toFixed(1)}x (target ≥ 5x)   continuous / one at a time: ${ratios.continuousOverSequential.toFixed(1)}x (target ≥ 10x)`,
);
console.log(
  `per CPU-second: continuous / static ${ratios.perCpuSecondContinuousOverStatic.toFixed(1)}x, continuous / one at a time ${ratios.perCpuSecondContinuousOverSequential.toFixed(1)}x`,
);
console.log(
  `ceiling on this machine: decode-shaped steps of ${ceiling!.decodeSeqs} sequences ${ceiling!.decodeTokPerS.toFixed(0)} tok/s, ` +
    `${ceiling!.prefillTokens}-token prefill steps ${ceiling!.prefillTokPerS.toFixed(0)} tok/s -> this workload at most ${ceilingTokPerS.toFixed(0)} output tok/s ` +
    `(no attention over long contexts, no drain) = ${(ceilingTokPerS / stat.outputTokPerS).toFixed(1)}x static, ${(ceilingTokPerS / seq.outputTokPerS).toFixed(1)}x one at a time; ` +
    `continuous batching reached ${((100 * cont.outputTokPerS) / ceilingTokPerS).toFixed(0)}% of it`,
);
console.log(
  `\n${prefixRequests} requests, Poisson ${prefixRate}/s, a shared 512-token system prompt + 16-64 tokens, 16 output tokens`,
);
console.log(
  `${'mode'.padEnd(24)}${'tok/s'.padStart(10)}${'TTFT p50'.padStart(10)}${'TTFT p99'.padStart(10)}${'hit rate'.padStart(10)}`,
);
for (const r of prefix)
  console.log(
    `${r.mode.padEnd(24)}${f(r.outputTokPerS)}${f(r.ttftP50Ms, 0)}${f(r.ttftP99Ms, 0)}${f(r.prefixCacheHitRate, 2)}`,
  );
console.log(`TTFT p50 off / on: ${ratios.prefixTtftP50OffOverOn.toFixed(1)}x (target ≥ 5x)`);

const dir = path.join(root, 'bench', 'results');
mkdirSync(dir, { recursive: true });
const file = path.join(dir, `engine-serving-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(
  file,
  `${JSON.stringify(
    {
      bench: 'engine-serving',
      at: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      loadAverage: os.loadavg(),
      loadAverageAtStart: loadAtStart,
      preset: presetName,
      modelParams: params,
      numThreads,
      workload: { requests, baselineRequests, rate, promptLen, outputLen, seed },
      prefixWorkload: {
        requests: prefixRequests,
        rate: prefixRate,
        systemPromptTokens: 512,
        suffixLen: [16, 64],
        outputLen: 16,
      },
      results,
      prefix,
      ratios,
      ceiling: {
        ...ceiling,
        outputTokPerS: ceilingTokPerS,
        overStatic: ceilingTokPerS / stat.outputTokPerS,
        overSequential: ceilingTokPerS / seq.outputTokPerS,
      },
      targets: {
        continuousOverStatic5x: ratios.continuousOverStatic >= 5,
        continuousOverSequential10x: ratios.continuousOverSequential >= 10,
        prefixTtft5x: ratios.prefixTtftP50OffOverOn >= 5,
      },
    },
    null,
    2,
  )}\n`,
);
console.log(
  `\nload average at the end: ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')} (on a shared machine, compare tok/CPU-s rather than tok/s)`,
);
console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
