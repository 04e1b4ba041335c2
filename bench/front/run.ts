/**
 * What LLMFront costs: the same streaming load on one model served directly by LLMServer and through
 * LLMFront (the front's replica parses, guards and audits; the graph's replica generates and streams
 * deltas to it: one more actor hop per delta), side by side in one run, at 1 and 16 concurrent streams.
 * Both servers run in this process (proxy on the main thread, each replica in a worker thread), with the
 * same model and native thread count, and only one of them is loaded at a time; the load client is a child
 * process (bench/http-llm's). Rounds alternate the two paths so that drift on a noisy machine hits both.
 *
 *   npx tsx bench/front/run.ts [--model tiny|110m|PATH] [--tokens N] [--rounds 3]
 *
 * 'tiny' (the default here) makes the fixed per-token cost of the extra hop look as large as it can; '110m'
 * is a realistic cost per token (bench/http-llm/bench-model.ts). Prints front/direct tokens/s per level and
 * writes bench/results/front-<timestamp>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Ingress, startServe } from '@flotilla/core';
import type { LLMServerOptions } from '@flotilla/deployments';
import { describeBenchModel, resolveBenchModel } from '../http-llm/bench-model.js';
import { percentile, type LevelResult } from '../http-llm/load.js';
import { LoadClient } from '../http-llm/load-client.js';
import { BenchFront, DirectLLM, GraphLLM } from './bench-front.js';

const LEVELS = [1, 16];
const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'tiny' },
    tokens: { type: 'string' },
    rounds: { type: 'string', default: '3' },
  },
});
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const benchModel = await resolveBenchModel(args.model!, root);
const maxTokens = Number(args.tokens ?? benchModel.defaultTokens);
const rounds = Number(args.rounds);
if (![maxTokens, rounds].every((n) => Number.isInteger(n) && n > 0))
  throw new Error('--tokens and --rounds must be positive integers');
const llm: LLMServerOptions = {
  model: benchModel.path,
  numThreads: 1,
  device: 'cpu',
  auditLog: 'none',
  ...(benchModel.kvCacheBytes ? { kvCacheBytes: benchModel.kvCacheBytes } : {}),
};
const loadBefore = os.loadavg();
const startedAt = performance.now();
const instance = await startServe({
  applications: [
    { name: 'direct', routePrefix: '/direct', app: DirectLLM.bind(llm) },
    { name: 'front', routePrefix: '/front', app: BenchFront.bind({ m: GraphLLM.bind(llm) }, { auditLog: 'none' }) },
  ],
});
const ingress = await Ingress.start(instance, { http: { port: 0 }, grpc: false });
const base = ingress.http!.url;
const urls = { direct: `${base}/direct`, front: `${base}/front` } as const;
for (const url of Object.values(urls)) {
  while ((await fetch(`${url}/health`).then((r) => r.status)) !== 200) await new Promise((r) => setTimeout(r, 100));
}
const client = LoadClient.start();
for (const url of Object.values(urls)) await client.level(url, 16, 8); // warm-up: JIT both paths

const results: Array<LevelResult & { round: number; via: 'direct' | 'front' }> = [];
for (let round = 0; round < rounds; round++) {
  for (const streams of LEVELS) {
    // Alternate which goes first, so that neither always follows the other.
    const order = round % 2 === 0 ? (['direct', 'front'] as const) : (['front', 'direct'] as const);
    for (const via of order)
      results.push({ ...(await client.level(urls[via], streams, maxTokens)).result, round, via });
  }
}
client.close();
await ingress.close();
await instance.shutdown();
const loadAfter = os.loadavg();

const median = (xs: number[]) => percentile(xs, 50);
const rows = LEVELS.map((streams) => {
  const of = (via: 'direct' | 'front') => results.filter((r) => r.streams === streams && r.via === via);
  const d = of('direct');
  const f = of('front');
  return {
    streams,
    directTokS: median(d.map((r) => r.tokensPerS)),
    frontTokS: median(f.map((r) => r.tokensPerS)),
    ratioPerRound: f.map((r, i) => r.tokensPerS / d[i]!.tokensPerS),
    directTtftP50: median(d.flatMap((r) => r.ttftMs)),
    frontTtftP50: median(f.flatMap((r) => r.ttftMs)),
  };
});
const fx = (x: number, d = 1, w = 9) => x.toFixed(d).padStart(w);
console.log(
  `\nLLMFront vs LLMServer directly, ${describeBenchModel(benchModel)}, ${maxTokens} tokens per stream, median of ${rounds} rounds;` +
    ` load average ${loadBefore[0]!.toFixed(2)} → ${loadAfter[0]!.toFixed(2)} on ${os.cpus().length} CPUs; ${((performance.now() - startedAt) / 1000).toFixed(0)} s`,
);
console.log('streams | direct tok/s | front tok/s | front/direct (per round)        | TTFT p50 ms direct / front');
for (const r of rows)
  console.log(
    `${String(r.streams).padStart(7)} | ${fx(r.directTokS)}    | ${fx(r.frontTokS)}   | ${fx((r.frontTokS / r.directTokS) * 100)}% (${r.ratioPerRound
      .map((x) => `${(x * 100).toFixed(0)}%`)
      .join(' ')}) | ${fx(r.directTtftP50)} / ${fx(r.frontTtftP50)}`,
  );
const out = path.join(root, 'bench/results', `front-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify({ bench: 'front', model: benchModel.name, maxTokens, rounds, cpus: os.cpus().length, loadavg: { before: loadBefore, after: loadAfter }, rows, raw: results }, null, 2)}\n`,
);
console.log(`wrote ${path.relative(root, out)}`);
process.exit(0);
