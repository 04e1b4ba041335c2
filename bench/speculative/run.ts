/**
 * Speculative decoding benchmark: greedy tokens/s of the target alone and with speculation (draft
 * model at k = 2 and 4, n-gram lookup at k = 4), one stream and 8 concurrent streams, measured side by
 * side in one run; beside each, the acceptance figures and whether the output equals the target's.
 * Uses models/flotilla-stories/{target,draft} when both are present, else the shared stories260K
 * (target) and llama2xs-260K (draft) — a same-size pair, so it measures acceptance and overhead, not
 * the speedup of a cheap draft. Prints a table and writes bench/results/speculative-<time>.json.
 *
 *   npx tsx bench/speculative/run.ts [--tokens 128] [--threads 1] [--streams 8] [--rounds 3]
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LLMEngine, type LLMEngineOptions } from '../../packages/engine/src/llm-engine.js';
import type { SamplingParams } from '../../packages/engine/src/sampling-params.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const maxTokens = Number(opt('tokens', '128'));
const numThreads = Number(opt('threads', '1'));
const streams = Number(opt('streams', '8'));
const ROUNDS = Number(opt('rounds', '3'));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const PROMPTS = [
  'Once upon a time, there was a little dog', 'Lily and Tom went to the park', 'One day, a big bird',
  'The sun was hot. Ben wanted', 'Sara had a red ball', 'Tim saw a cat on the', 'Mom made a cake for', 'The little boat',
];

function pickPair(): { name: string; target: string; draft: string; tokenizer?: string } {
  const own = path.join(root, 'models/flotilla-stories');
  const t = path.join(own, 'target');
  const d = path.join(own, 'draft');
  if (existsSync(path.join(t, 'model.safetensors')) && existsSync(path.join(d, 'model.safetensors'))) return { name: 'flotilla-stories', target: t, draft: d };
  const shared = process.env.FLOTILLA_MODELS ?? path.resolve(root, '../shared/models');
  return {
    name: 'stories260K + llama2xs-260K (shared)', target: path.join(shared, 'stories260K/stories260K.bin'),
    draft: path.join(shared, 'llama2xs-260K/llama2xs-260K.bin'), tokenizer: path.join(shared, 'stories260K/tok512.bin'),
  };
}

interface Config { name: string; speculative?: LLMEngineOptions['speculative'] }

async function measure(engine: LLMEngine, concurrency: number): Promise<{ tokensPerS: number; outputs: number[][] }> {
  const params: SamplingParams = { temperature: 0, maxTokens, ignoreEos: true };
  const prompts = PROMPTS.slice(0, concurrency === 1 ? 4 : concurrency);
  const drain = async (p: string) => {
    const ids: number[] = [];
    for await (const o of engine.generate(p, params)) ids.push(...o.tokenIds);
    return ids;
  };
  const t0 = performance.now();
  let outputs: number[][];
  if (concurrency === 1) {
    outputs = [];
    for (const p of prompts) outputs.push(await drain(p));
  } else {
    outputs = await Promise.all(prompts.map(drain));
  }
  const s = (performance.now() - t0) / 1000;
  return { tokensPerS: outputs.reduce((a, o) => a + o.length, 0) / s, outputs };
}

async function main(): Promise<void> {
  const pair = pickPair();
  const base: LLMEngineOptions = { model: pair.target, numThreads, device: 'cpu', ...(pair.tokenizer ? { tokenizerPath: pair.tokenizer } : {}) };
  const draft = { draftModel: pair.draft, ...(pair.tokenizer ? { draftTokenizerPath: pair.tokenizer } : {}) };
  const configs: Config[] = [
    { name: 'target alone' },
    { name: 'draft k=2', speculative: { ...draft, k: 2 } },
    { name: 'draft k=4', speculative: { ...draft, k: 4 } },
    { name: 'ngram k=4', speculative: { method: 'ngram', k: 4 } },
    // Speculation configured but off for every request: the plain native step path, measured again
    // last so that drift of a shared machine over the run shows up beside the first baseline.
    { name: 'alone (again)', speculative: { method: 'ngram', k: 0 } },
  ];
  console.log(`pair: ${pair.name}; greedy, ${maxTokens} tokens per request, ${numThreads} thread(s), median of ${ROUNDS} interleaved rounds`);
  const engines: LLMEngine[] = [];
  for (const c of configs) engines.push(await LLMEngine.create({ ...base, ...(c.speculative ? { speculative: c.speculative } : {}) }));
  const rows: Array<Record<string, unknown>> = [];
  try {
    for (const e of engines) await measure(e, 1); // warm-up
    for (const conc of [1, streams]) {
      // Rounds interleave the configurations so that a shared machine's drift hits them all alike.
      const rates: number[][] = configs.map(() => []);
      const outs: number[][][] = [];
      for (let round = 0; round < ROUNDS; round++) {
        for (let i = 0; i < configs.length; i++) {
          const r = await measure(engines[i]!, conc);
          rates[i]!.push(r.tokensPerS);
          outs[i] = r.outputs;
        }
      }
      configs.forEach((c, i) => {
        const s = engines[i]!.stats().speculative;
        const spec = s && s.drafts > 0;
        rows.push({
          config: c.name, streams: conc, tokensPerS: median(rates[i]!), exact: JSON.stringify(outs[i]) === JSON.stringify(outs[0]),
          acceptanceRate: spec ? s.acceptanceRate : null, agreementRate: spec ? s.agreementRate : null, tokensPerPass: spec ? s.meanTokensPerPass : 1,
          acceptanceByPosition: spec ? s.acceptanceByPosition : [],
        });
      });
    }
  } finally {
    for (const e of engines) await e.dispose();
  }
  for (const r of rows) {
    const b = rows.find((x) => x.config === 'target alone' && x.streams === r.streams)!;
    r.speedup = (r.tokensPerS as number) / (b.tokensPerS as number);
  }
  console.log('config        streams  tok/s    speedup  accept  agree  tok/pass  exact');
  for (const r of rows) {
    const f = (v: unknown, d = 2) => (typeof v === 'number' ? v.toFixed(d) : '-');
    console.log(`${String(r.config).padEnd(13)} ${String(r.streams).padStart(7)}  ${f(r.tokensPerS, 0).padStart(6)}  ${f(r.speedup).padStart(7)}  ${f(r.acceptanceRate).padStart(6)}  ${f(r.agreementRate).padStart(5)}  ${f(r.tokensPerPass).padStart(8)}  ${r.exact}`);
  }
  const dir = path.join(root, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `speculative-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ pair: pair.name, maxTokens, numThreads, rows }, null, 2));
  console.log(`wrote ${path.relative(root, file)}`);
}

await main();
