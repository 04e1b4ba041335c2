/**
 * Speculative decoding benchmark: tokens/s without and with speculation, side by side in one run
 * (configurations interleaved over rounds, median), greedy unless a row says T=1 (seeded sampling),
 * per section:
 *
 *  - random: a random-weight target of realistic size (110M: dim 768, 12 layers, vocab 32000, f32)
 *    and a draft made of its first 2 layers, embeddings and classifier, the target's later layers'
 *    output projections scaled by --scale so greedy agreement lands near 0.75
 *    (model-loader/random-draft-pair.ts; written once to the OS temp dir). The draft is held as
 *    --draft-format (default int8: a 2-layer draft sharing a 32000 × 768 classifier still costs a
 *    third of the target in f32). Also n-gram lookup on the same target, whose greedy output of
 *    random weights repeats itself.
 *  - shipped: models/flotilla-stories target and draft (tiny: per-step overhead dominates).
 *  - actors: the random pair across actors (actors.ts): a SpeculativePipeline whose draft and target
 *    run in child processes against the target alone in a child process (an LLMServer), at one stream,
 *    with the round's time broken down (draft, verify, crossings), with direct replica links and with
 *    every call relayed through the parent (--link-modes direct,relay), k from --actors-k, pipelines
 *    without and with proposing ahead (--lookahead off,on; SpeculativePipelineOptions.lookahead).
 *
 * Rows named 'perstep' run on a twin engine whose models hide the fused native calls (one step()
 * per draft token, logits() for verification): the same speculation as before those calls existed.
 * Rows named 'tsver' run on a twin whose models hide verify() alone: verification in TypeScript from
 * logits() rows (argmax() ids when greedy), as before verify() existed; their outputs must equal the
 * native-verify row's ('exact').
 *
 * Beside each speculative row: α (per-token agreement), acceptance rate, tokens per target pass, the
 * cost ratios measured natively (c = draft decode / target decode, v = verify of k+1 tokens / target
 * decode, d = one fused draft() round of k / target decode), the speedup predicted from
 * (1 − α^(k+1)) / (1 − α) / (d + v) (k·c in place of d for n-gram, or an addon without draft()), and the measured one —
 * in wall time, and in this process's CPU time (tokens per CPU-second: what a core of its own would
 * give, steadier on a shared machine; with --threads 1 the step loop is serial, so the two agree
 * when the machine is quiet).
 * Prints a table and writes bench/results/spec-decode-<time>.json.
 *
 *   npm run bench:spec-decode -- [--sections random,shipped] [--tokens 64] [--rounds 3] [--threads 1]
 *     [--scale 0.15] [--draft-format int8] [--streams 8]
 *     [--actors-k 4] [--link-modes direct,relay] [--lookahead off,on]
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import { loadModel, type LoadedModel } from '../../packages/engine/src/model-loader/load-model.js';
import { makeRandomDraftPair } from '../../packages/engine/src/model-loader/random-draft-pair.js';
import { MODEL_PRESETS } from '../../packages/engine/src/model-loader/random-model.js';
import type { NativeWeightFormat } from '../../packages/engine/src/native/native-types.js';
import { printActors, runActors, type ActorsRow, type LinkMode } from './actors.js';
import { measureStepCosts, median, predictedSpeedup, type StepCosts } from './costs.js';
import {
  addAcceptance,
  measure,
  withoutFusedCalls,
  withoutVerify,
  type Acceptance,
  type Config,
} from './throughput.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const sections = opt('sections', 'random,shipped').split(',');
const maxTokens = Number(opt('tokens', '64'));
const rounds = Number(opt('rounds', '3'));
const numThreads = Number(opt('threads', '1'));
const scale = Number(opt('scale', '0.15'));
const draftFormat = opt('draft-format', 'int8') as NativeWeightFormat;
const streams = Number(opt('streams', '8'));
const actorsK = opt('actors-k', '4').split(',').map(Number);
const linkModes = opt('link-modes', 'direct,relay').split(',') as LinkMode[];
const lookahead = opt('lookahead', 'off,on')
  .split(',')
  .map((x) => x === 'on');

const PROMPTS = [
  'Once upon a time, there was a little dog',
  'Lily and Tom went to the park',
  'One day, a big bird',
  'The sun was hot. Ben wanted',
  'Sara had a red ball',
  'Tim saw a cat on the',
  'Mom made a cake for',
  'The little boat',
];

interface Row {
  section: string;
  config: string;
  streams: number;
  k: number;
  method: string | null;
  tokensPerS: number;
  speedup: number;
  cpuSpeedup: number;
  exact: boolean | null;
  alpha: number | null;
  acceptanceRate: number | null;
  tokensPerPass: number;
  c: number | null;
  v: number | null;
  predicted: number | null;
}

interface Section {
  name: string;
  target: LoadedModel;
  draft: LoadedModel | null;
  configs: Config[];
  concurrency: number[];
}

/** The random 110M pair's directory, written once. */
async function randomPairDir(): Promise<string> {
  const dir = path.join(tmpdir(), 'flotilla-spec-bench', `110m-l2-s${scale}`);
  if (!existsSync(path.join(dir, 'draft', 'config.json'))) {
    console.log(`writing the random 110M pair (scale ${scale}) to ${dir} ...`);
    await makeRandomDraftPair(MODEL_PRESETS['110m'], { dir, draftLayers: 2, residualScale: scale });
  }
  return dir;
}

async function actorsSection(): Promise<ActorsRow[]> {
  const dir = await randomPairDir();
  console.log(
    `\n== actors: pipeline (thread) over draft and target in child processes vs the target alone (LLMServer, child process), ` +
      `random 110M f32 / 2-layer ${draftFormat} draft, scale ${scale}, 1 stream`,
  );
  const rows = await runActors({
    target: path.join(dir, 'target'),
    draft: path.join(dir, 'draft'),
    numThreads,
    draftFormat,
    ks: actorsK,
    lookahead,
    modes: linkModes,
    prompts: PROMPTS.slice(0, 2),
    maxTokens,
    rounds,
  });
  printActors(rows);
  return rows;
}

async function randomSection(): Promise<Section> {
  const dir = await randomPairDir();
  const load = { numThreads, device: 'cpu' as const, maxBatchTokens: 512, maxBatchSeqs: 16 };
  const target = await loadModel(path.join(dir, 'target'), load);
  const draft = await loadModel(path.join(dir, 'draft'), { ...load, weightFormat: draftFormat });
  return {
    name: `random 110M f32 / 2-layer ${draftFormat} draft, scale ${scale}`,
    target,
    draft,
    concurrency: [1],
    configs: [
      { name: 'plain', speculative: false },
      { name: 'draft k=2', speculative: { method: 'draft', k: 2 } },
      { name: 'draft k=3', speculative: { method: 'draft', k: 3 } },
      { name: 'draft k=4', speculative: { method: 'draft', k: 4 } },
      { name: 'ngram k=4', speculative: { method: 'ngram', k: 4 } },
      { name: 'ngram k=8', speculative: { method: 'ngram', k: 8 } },
      { name: 'k=3 perstep', speculative: { method: 'draft', k: 3 }, perStep: true },
    ],
  };
}

async function shippedSection(): Promise<Section | null> {
  const own = path.join(root, 'models/flotilla-stories');
  if (!existsSync(path.join(own, 'target/model.safetensors')) || !existsSync(path.join(own, 'draft/model.safetensors')))
    return null;
  const load = { numThreads, device: 'cpu' as const, maxBatchTokens: 512, maxBatchSeqs: 16 };
  return {
    name: 'flotilla-stories (shipped pair)',
    target: await loadModel(path.join(own, 'target'), load),
    draft: await loadModel(path.join(own, 'draft'), load),
    concurrency: [1, streams],
    configs: [
      { name: 'plain', speculative: false },
      { name: 'draft k=2', speculative: { method: 'draft', k: 2 } },
      { name: 'draft k=4', speculative: { method: 'draft', k: 4 } },
      { name: 'ngram k=4', speculative: { method: 'ngram', k: 4 } },
      { name: 'k=2 perstep', speculative: { method: 'draft', k: 2 }, perStep: true },
      { name: 'k=4 perstep', speculative: { method: 'draft', k: 4 }, perStep: true },
      { name: 'k=4 tsver', speculative: { method: 'draft', k: 4 }, tsVerify: true },
      { name: 'plain T=1', speculative: false, temperature: 1, sameAs: null },
      { name: 'k=4 T=1', speculative: { method: 'draft', k: 4 }, temperature: 1, sameAs: 'k=4 T=1 tsver' },
      {
        name: 'k=4 T=1 tsver',
        speculative: { method: 'draft', k: 4 },
        temperature: 1,
        tsVerify: true,
        sameAs: 'k=4 T=1',
      },
    ],
  };
}

async function runSection(sec: Section): Promise<Row[]> {
  const create = (target: LoadedModel, draft: LoadedModel | null) =>
    LLMEngine.create({
      model: target,
      enablePrefixCaching: false,
      maxNumBatchedTokens: 512,
      maxNumSeqs: 16,
      speculative: { k: 4, ...(draft ? { draftModel: draft } : {}) },
    });
  const engine = await create(sec.target, sec.draft);
  // The twin shares the native models (and their KV pools: the two never run at once, prefix caching is off).
  const perStep = sec.configs.some((c) => c.perStep)
    ? await create(withoutFusedCalls(sec.target), sec.draft ? withoutFusedCalls(sec.draft) : null)
    : null;
  const tsVerify = sec.configs.some((c) => c.tsVerify)
    ? await create(withoutVerify(sec.target), sec.draft ? withoutVerify(sec.draft) : null)
    : null;
  const engineFor = (c: Config) => (c.perStep ? perStep! : c.tsVerify ? tsVerify! : engine);
  const rows: Row[] = [];
  try {
    for (const c of sec.configs) await measure(engineFor(c), c, PROMPTS.slice(0, 1), 8, 1); // warm-up
    const ks = [...new Set(sec.configs.flatMap((c) => (c.speculative ? [c.speculative.k ?? 4] : [])))];
    const costs = await measureStepCosts(sec.target.model, sec.draft?.model ?? null, ks, {
      context: 64,
      reps: Number(opt('cost-reps', '15')),
    });
    for (const conc of sec.concurrency) {
      const prompts = PROMPTS.slice(0, conc === 1 ? 2 : conc);
      const rates: number[][] = sec.configs.map(() => []);
      const cpuRates: number[][] = sec.configs.map(() => []);
      const acc: Acceptance[] = sec.configs.map(() => ({ drafts: 0, draftTokens: 0, acceptedTokens: 0, judged: 0 }));
      const outs: number[][][] = [];
      for (let r = 0; r < rounds; r++) {
        for (let i = 0; i < sec.configs.length; i++) {
          const run = await measure(engineFor(sec.configs[i]!), sec.configs[i]!, prompts, maxTokens, conc);
          rates[i]!.push(run.tokensPerS);
          cpuRates[i]!.push(run.tokensPerCpuS);
          acc[i] = addAcceptance(acc[i]!, run.acceptance);
          outs[i] = run.outputs;
        }
      }
      // Speedups are per-round ratios to that round's plain run (neighbours' load swings over minutes), then the median.
      const ratio = (xs: number[][], i: number) => median(xs[i]!.map((x, r) => x / xs[0]![r]!));
      sec.configs.forEach((c, i) =>
        rows.push(
          row(
            sec.name,
            c,
            conc,
            median(rates[i]!),
            { wall: ratio(rates, i), cpu: ratio(cpuRates, i) },
            sameOutputs(sec.configs, outs, i),
            acc[i]!,
            costs,
          ),
        ),
      );
    }
    printCosts(costs);
  } finally {
    await perStep?.dispose();
    await tsVerify?.dispose();
    await engine.dispose();
  }
  return rows;
}

/** Whether config i's outputs equal those of the configuration it names in sameAs (default 'plain'); null: none named. */
function sameOutputs(configs: readonly Config[], outs: number[][][], i: number): boolean | null {
  const ref = configs[i]!.sameAs === undefined ? 'plain' : configs[i]!.sameAs;
  if (ref === null) return null;
  const j = configs.findIndex((c) => c.name === ref);
  if (j < 0) throw new Error(`bench config ${configs[i]!.name}: sameAs names no configuration (${ref})`);
  return JSON.stringify(outs[i]) === JSON.stringify(outs[j]);
}

interface Speedup {
  wall: number;
  cpu: number;
}

function row(
  section: string,
  c: Config,
  conc: number,
  tokensPerS: number,
  speedup: Speedup,
  exact: boolean | null,
  a: Acceptance,
  costs: StepCosts,
): Row {
  const spec = c.speculative;
  const k = spec ? (spec.k ?? 4) : 0;
  const method = spec ? (spec.method ?? null) : null;
  const alpha = a.judged > 0 ? a.acceptedTokens / a.judged : null;
  const v = spec ? costs.verifyRatio[k]! : null;
  const cr = !spec ? null : method === 'ngram' ? 0 : costs.draftRatio!;
  return {
    section,
    config: c.name,
    streams: conc,
    k,
    method,
    tokensPerS,
    speedup: speedup.wall,
    cpuSpeedup: speedup.cpu,
    exact,
    alpha,
    acceptanceRate: a.draftTokens > 0 ? a.acceptedTokens / a.draftTokens : null,
    tokensPerPass: a.drafts > 0 ? (a.acceptedTokens + a.drafts) / a.drafts : 1,
    c: cr,
    v,
    predicted:
      alpha !== null && cr !== null && v !== null
        ? predictedSpeedup(alpha, k, cr, v, method === 'draft' && !c.perStep ? costs.draftRoundRatio[k] : undefined)
        : null,
  };
}

function printCosts(c: StepCosts): void {
  const v = Object.keys(c.verifyMs)
    .map((k) => `verify k=${k} ${c.verifyMs[Number(k)]!.toFixed(2)} ms (v ${c.verifyRatio[Number(k)]!.toFixed(2)})`)
    .join(', ');
  const d = Object.keys(c.draftRoundRatio)
    .map((k) => `k=${k} ${c.draftRoundRatio[Number(k)]!.toFixed(2)}`)
    .join(', ');
  console.log(
    `  native costs (CPU ms, medians; ratios are medians of back-to-back ratios): target decode ${c.targetDecodeMs.toFixed(2)}, ` +
      `draft decode ${c.draftDecodeMs?.toFixed(2) ?? '-'} (c ${c.draftRatio?.toFixed(3) ?? '-'}), ${v}${d ? `; fused draft round / target decode: ${d}` : ''}`,
  );
}

function printRows(rows: Row[]): void {
  const f = (x: number | null, d = 2) => (x === null ? '-' : x.toFixed(d));
  console.log(
    'config       streams    tok/s  speedup  cpu-speedup  predicted   alpha  accept  tok/pass      c      v  exact',
  );
  for (const r of rows) {
    console.log(
      `${r.config.padEnd(13)}${String(r.streams).padStart(7)}  ${f(r.tokensPerS, 1).padStart(7)}  ${f(r.speedup).padStart(7)}  ${f(r.cpuSpeedup).padStart(11)}  ${f(r.predicted).padStart(9)}  ${f(r.alpha).padStart(6)}  ${f(r.acceptanceRate).padStart(6)}  ${f(r.tokensPerPass).padStart(8)}  ${f(r.c, 3).padStart(5)}  ${f(r.v).padStart(5)}  ${r.exact ?? '-'}`,
    );
  }
}

async function main(): Promise<void> {
  console.log(
    `greedy unless T=1, ${maxTokens} tokens per request, ${numThreads} thread(s), median of ${rounds} interleaved rounds`,
  );
  const all: Row[] = [];
  const actors: ActorsRow[] = [];
  for (const name of sections) {
    if (name === 'actors') {
      actors.push(...(await actorsSection()));
      continue;
    }
    const sec = name === 'random' ? await randomSection() : name === 'shipped' ? await shippedSection() : null;
    if (!sec) {
      console.log(`section ${name}: skipped (unknown, or its models are missing)`);
      continue;
    }
    try {
      console.log(`\n== ${sec.name}`);
      const rows = await runSection(sec);
      printRows(rows);
      all.push(...rows);
    } finally {
      sec.draft?.dispose();
      sec.target.dispose();
    }
  }
  const dir = path.join(root, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `spec-decode-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify({ maxTokens, rounds, numThreads, scale, draftFormat, rows: all, actors }, null, 2),
  );
  console.log(`wrote ${path.relative(root, file)}`);
}

await main();
