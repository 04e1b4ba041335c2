/**
 * HTTP overhead of the LLM server: the same load through `LLMServer` behind the HTTP proxy (SSE on
 * /v1/completions, engine in a worker-thread replica) and directly on LLMEngine, in one run, at 1, 16
 * and 64 concurrent streams. Model: the small random-weight model LLMServer serves without a model
 * (RANDOM_MODEL_CONFIG), one native thread on both paths. Target: HTTP >= 90% of engine tokens/s at 64.
 *
 *   npx tsx bench/http-llm/run.ts [maxTokens=64]
 *
 * Prints a table and writes bench/results/http-llm-<timestamp>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ingress, serve } from '@flotilla/core';
import { LLMEngine, makeRandomModel } from '@flotilla/engine';
import { RANDOM_MODEL_CONFIG } from '@flotilla/deployments';
import { BenchLLM } from './bench-llm.js';
import { engineLevel, httpLevel, percentile, type LevelResult } from './load.js';

const LEVELS = [1, 16, 64];
const maxTokens = Number(process.argv[2] ?? 64);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const modelDir = path.join(os.tmpdir(), 'flotilla-bench-http-llm');
const model = await makeRandomModel(RANDOM_MODEL_CONFIG, { format: 'llama2c', dir: modelDir, seed: 0 });
const engineOptions = { numThreads: 1, device: 'cpu' as const };

const results: LevelResult[] = [];
const engine = await LLMEngine.create({ model, ...engineOptions });
await engineLevel(engine, 4, 8); // warm-up
const instance = await serve.run(BenchLLM.bind({ model, ...engineOptions, auditLog: 'none' }), { name: 'bench' });
const ingress = await Ingress.start(instance, { http: { port: 0 }, grpc: false });
const url = ingress.http!.url;
await httpLevel(url, 4, 8); // warm-up (also waits for the model to load)
for (const streams of LEVELS) {
  // Alternate the two paths per level so drift on a noisy machine hits both alike.
  results.push(await engineLevel(engine, streams, maxTokens));
  results.push(await httpLevel(url, streams, maxTokens));
}
await ingress.close();
await instance.shutdown();
await engine.dispose();

const rows = LEVELS.map((streams) => {
  const e = results.find((r) => r.path === 'engine' && r.streams === streams)!;
  const h = results.find((r) => r.path === 'http' && r.streams === streams)!;
  return {
    streams, engineTokS: e.tokensPerS, httpTokS: h.tokensPerS, ratio: h.tokensPerS / e.tokensPerS,
    engineTtftP50: percentile(e.ttftMs, 50), engineTtftP99: percentile(e.ttftMs, 99),
    httpTtftP50: percentile(h.ttftMs, 50), httpTtftP99: percentile(h.ttftMs, 99),
  };
});
const f = (x: number, d = 1) => x.toFixed(d).padStart(9);
console.log(`\nHTTP vs engine, random-weight model ${JSON.stringify(RANDOM_MODEL_CONFIG)}, ${maxTokens} tokens per stream, 1 native thread`);
console.log('streams | engine tok/s | http tok/s | http/engine | engine TTFT p50/p99 ms | http TTFT p50/p99 ms');
for (const r of rows) {
  console.log(`${String(r.streams).padStart(7)} | ${f(r.engineTokS)}    | ${f(r.httpTokS)}  | ${f(r.ratio * 100)}%  |`
    + ` ${f(r.engineTtftP50)} / ${f(r.engineTtftP99)}  | ${f(r.httpTtftP50)} / ${f(r.httpTtftP99)}`);
}
const at64 = rows.find((r) => r.streams === 64)!;
console.log(`target: http >= 90% of engine tokens/s at 64 streams → ${(at64.ratio * 100).toFixed(1)}% ${at64.ratio >= 0.9 ? 'MET' : 'NOT MET'}`);
const out = path.join(root, 'bench/results', `http-llm-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ bench: 'http-llm', model: RANDOM_MODEL_CONFIG, maxTokens, engineOptions, cpus: os.cpus().length,
  node: process.version, rows, raw: results }, null, 2)}\n`);
console.log(`wrote ${path.relative(root, out)}`);
process.exit(0);
