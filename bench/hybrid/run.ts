/**
 * Hybrid routing benchmark (issue #19 item 9): on a labelled prompt set the project ships
 * (bench/hybrid/prompts.jsonl: easy story openings and hard "explain / compare / why" requests), what
 * small-only, large-only, hybrid (HybridRouter's default heuristic classifier) and an oracle (the label)
 * cost in dollars per 1K tokens, and a quality proxy: agreement with the large model's greedy output
 * (share of the first N generated tokens equal position by position, and the length of the common
 * prefix). Models: the bundled pair (models/flotilla-stories: draft = small, target = large; the same
 * tokenizer), greedy, run directly on LLMEngine (no actors: the routing decision is what is measured).
 * Prices: HybridRouter's placeholders (DEFAULT_COST_PER_1K_TOKENS) unless --small-price/--large-price.
 * Prints a table and writes bench/results/hybrid-<time>.json.
 *
 *   npx tsx bench/hybrid/run.ts [--tokens 32] [--small-price 0.0001] [--large-price 0.001]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  DEFAULT_COST_PER_1K_TOKENS,
  heuristicChoice,
  type ModelChoice,
} from '../../packages/deployments/src/hybrid-router.js';
import { LLMEngine } from '../../packages/engine/src/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const { values: opts } = parseArgs({
  options: {
    tokens: { type: 'string', default: '32' },
    'small-price': { type: 'string', default: String(DEFAULT_COST_PER_1K_TOKENS.small) },
    'large-price': { type: 'string', default: String(DEFAULT_COST_PER_1K_TOKENS.large) },
  },
});
const TOKENS = Number(opts.tokens);
const PRICE: Record<ModelChoice, number> = { small: Number(opts['small-price']), large: Number(opts['large-price']) };

interface Row {
  prompt: string;
  label: 'easy' | 'hard';
}
const rows: Row[] = readFileSync(path.join(here, 'prompts.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l));

interface Output {
  tokens: number[];
  promptTokens: number;
}

async function greedy(engine: LLMEngine, prompt: string): Promise<Output> {
  const tokens: number[] = [];
  let promptTokens = 0;
  for await (const out of engine.generate(prompt, { maxTokens: TOKENS, temperature: 0, ignoreEos: true })) {
    tokens.push(...out.tokenIds);
    promptTokens = out.usage.promptTokens;
  }
  return { tokens, promptTokens };
}

function agreement(a: number[], ref: number[]): { positional: number; prefix: number } {
  const n = Math.min(a.length, ref.length);
  let same = 0;
  let prefix = -1;
  for (let i = 0; i < n; i++) {
    if (a[i] === ref[i]) same++;
    else if (prefix < 0) prefix = i;
  }
  return { positional: n ? same / n : 1, prefix: prefix < 0 ? n : prefix };
}

const models = path.join(root, 'models/flotilla-stories');
process.stdout.write('loading the bundled pair (draft = small, target = large)...\n');
const small = await LLMEngine.create({ model: path.join(models, 'draft'), numThreads: 2 });
const large = await LLMEngine.create({ model: path.join(models, 'target'), numThreads: 2 });

const results: Array<Row & { choice: ModelChoice; small: Output; large: Output }> = [];
for (const [i, row] of rows.entries()) {
  process.stdout.write(`\r  prompt ${i + 1}/${rows.length}`);
  results.push({
    ...row,
    choice: heuristicChoice(row.prompt),
    small: await greedy(small, row.prompt),
    large: await greedy(large, row.prompt),
  });
}
process.stdout.write('\n');
await small.dispose();
await large.dispose();

type Policy = (r: (typeof results)[number]) => ModelChoice;
const policies: Record<string, Policy> = {
  'small only': () => 'small',
  'large only': () => 'large',
  'hybrid (heuristic)': (r) => r.choice,
  'oracle (label)': (r) => (r.label === 'easy' ? 'small' : 'large'),
};

const table = Object.entries(policies).map(([name, pick]) => {
  let dollars = 0;
  let tokens = 0;
  let positional = 0;
  let prefix = 0;
  let toLarge = 0;
  for (const r of results) {
    const m = pick(r);
    const out = r[m];
    const n = out.promptTokens + out.tokens.length;
    dollars += (n * PRICE[m]) / 1000;
    tokens += n;
    const a = agreement(out.tokens, r.large.tokens);
    positional += a.positional;
    prefix += a.prefix;
    if (m === 'large') toLarge++;
  }
  return {
    policy: name,
    usdPer1kTokens: (dollars / tokens) * 1000,
    agreement: positional / results.length,
    commonPrefix: prefix / results.length,
    toLarge: toLarge / results.length,
  };
});

const accuracy = results.filter((r) => (r.label === 'easy') === (r.choice === 'small')).length / results.length;
console.log(
  `\n${results.length} prompts (${rows.filter((r) => r.label === 'easy').length} easy), ${TOKENS} greedy tokens each; prices $${PRICE.small} / $${PRICE.large} per 1K tokens (small / large)`,
);
console.log('policy                $/1K tokens   agreement w/ large   common prefix (tokens)   sent to large');
for (const t of table) {
  console.log(
    `${t.policy.padEnd(20)}  ${t.usdPer1kTokens.toFixed(6).padStart(11)}   ${(t.agreement * 100).toFixed(1).padStart(17)}%   ${t.commonPrefix.toFixed(1).padStart(22)}   ${(t.toLarge * 100).toFixed(0).padStart(12)}%`,
  );
}
console.log(`heuristic classifier agrees with the labels on ${(accuracy * 100).toFixed(0)}% of prompts`);
const dir = path.join(root, 'bench/results');
mkdirSync(dir, { recursive: true });
const file = path.join(dir, `hybrid-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ tokens: TOKENS, prices: PRICE, table, classifierAccuracy: accuracy }, null, 2));
console.log(`wrote ${path.relative(root, file)}`);
