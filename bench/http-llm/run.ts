/**
 * HTTP overhead of the LLM server: the same load through `LLMServer` behind the HTTP proxy (SSE on
 * /v1/completions, engine in a worker-thread replica) and directly on LLMEngine, in one run, at 1, 16
 * and 64 concurrent streams, with the same native thread count on both paths (default 1, leaving the other
 * core to the proxy, the replica's JS and the load client). Target: HTTP >= 90% of engine tokens/s at 64.
 *
 * Model (`--model`, bench-model.ts): '110m' (default; random weights, MODEL_PRESETS['110m'], a realistic
 * serving cost per token), 'tiny' (RANDOM_MODEL_CONFIG, what LLMServer serves without a model: ~75 µs of
 * compute per token, so the fixed HTTP cost per token dominates), or a model file or directory.
 *
 * What is compared: the engine path is consumed in this process, iterating generate()'s outputs
 * directly (what a caller embedding the engine gets). The HTTP path is consumed by node:http clients in a
 * child process (client.ts), so that parsing 64 SSE streams does not take the server's event loop; the
 * server is this process (proxy on the main thread, replica in a worker thread). Both share the
 * machine's cores, so the client's CPU still competes with the server: its CPU time is reported apart.
 *
 *   npx tsx bench/http-llm/run.ts [--model 110m|tiny|PATH] [--tokens N] [--rounds 3] [--threads 1]
 *
 * --tokens defaults to 32 for 110m and a path (about 3 minutes on 2 cores), 64 for tiny. The old
 * positional form `run.ts [maxTokens] [rounds]` still works.
 *
 * Each round runs every level on both paths, alternating, so drift on a noisy machine hits both alike;
 * the table shows medians over rounds. Server CPU is this process's user+system time (all threads,
 * native included) per 1000 tokens; client CPU is the load client's. Writes bench/results/http-llm-<timestamp>.json.
 *
 * Where the difference goes, by thread and function: profile.ts (same load, HTTP path only).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Ingress, serve } from '@flotilla/core';
import { LLMEngine } from '@flotilla/engine';
import { BenchLLM } from './bench-llm.js';
import { describeBenchModel, resolveBenchModel } from './bench-model.js';
import { engineLevel, percentile, type LevelResult } from './load.js';
import { LoadClient } from './load-client.js';

interface Measured extends LevelResult {
  round: number;
  serverCpuMs: number;
  clientCpuMs: number;
}

const LEVELS = [1, 16, 64];
const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string', default: '110m' },
    tokens: { type: 'string' },
    rounds: { type: 'string' },
    threads: { type: 'string', default: '1' },
  },
});
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const benchModel = await resolveBenchModel(args.model!, root);
const maxTokens = Number(args.tokens ?? positionals[0] ?? benchModel.defaultTokens);
const rounds = Number(args.rounds ?? positionals[1] ?? 3);
const numThreads = Number(args.threads);
if (![maxTokens, rounds, numThreads].every((n) => Number.isInteger(n) && n > 0))
  throw new Error('--tokens, --rounds and --threads must be positive integers');
const model = benchModel.path;
const engineOptions = {
  numThreads,
  device: 'cpu' as const,
  ...(benchModel.kvCacheBytes ? { kvCacheBytes: benchModel.kvCacheBytes } : {}),
};
const loadBefore = os.loadavg();
const startedAt = performance.now();

const engine = await LLMEngine.create({ model, ...engineOptions });
const instance = await serve.run(BenchLLM.bind({ model, ...engineOptions, auditLog: 'none' }), { name: 'bench' });
const ingress = await Ingress.start(instance, { http: { port: 0 }, grpc: false });
const url = ingress.http!.url;
const client = LoadClient.start();
// Warm-up at the widest level, so that both paths are JIT-compiled before anything is measured (one short
// pass for a model whose steps take long: the JS runs the same number of times per step whatever the model).
const tiny = benchModel.name === 'tiny';
for (let i = 0; i < (tiny ? 2 : 1); i++) {
  await engineLevel(engine, 64, tiny ? 16 : 8);
  await client.level(url, 64, tiny ? 16 : 8);
}

const results: Measured[] = [];
const cpuMs = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
};
for (let round = 0; round < rounds; round++) {
  for (const streams of LEVELS) {
    let cpu0 = process.cpuUsage();
    const e = await engineLevel(engine, streams, maxTokens);
    results.push({ ...e, round, serverCpuMs: cpuMs(cpu0), clientCpuMs: 0 });
    cpu0 = process.cpuUsage();
    const h = await client.level(url, streams, maxTokens);
    results.push({ ...h.result, round, serverCpuMs: cpuMs(cpu0), clientCpuMs: h.clientCpuMs });
  }
}
client.close();
await ingress.close();
await instance.shutdown();
await engine.dispose();
const loadAfter = os.loadavg();

const median = (xs: number[]) => percentile(xs, 50);
const per1k = (rs: Measured[], key: 'serverCpuMs' | 'clientCpuMs') =>
  (1000 * rs.reduce((s, r) => s + r[key], 0)) / rs.reduce((s, r) => s + r.tokens, 0);
const rows = LEVELS.map((streams) => {
  const e = results.filter((r) => r.path === 'engine' && r.streams === streams);
  const h = results.filter((r) => r.path === 'http' && r.streams === streams);
  const engineTokS = median(e.map((r) => r.tokensPerS));
  const httpTokS = median(h.map((r) => r.tokensPerS));
  return {
    streams,
    engineTokS,
    httpTokS,
    ratio: httpTokS / engineTokS,
    ratioPerRound: h.map((r, i) => r.tokensPerS / e[i]!.tokensPerS),
    engineTtftP50: percentile(
      e.flatMap((r) => r.ttftMs),
      50,
    ),
    engineTtftP99: percentile(
      e.flatMap((r) => r.ttftMs),
      99,
    ),
    httpTtftP50: percentile(
      h.flatMap((r) => r.ttftMs),
      50,
    ),
    httpTtftP99: percentile(
      h.flatMap((r) => r.ttftMs),
      99,
    ),
    engineCpuPer1k: per1k(e, 'serverCpuMs'),
    httpServerCpuPer1k: per1k(h, 'serverCpuMs'),
    httpClientCpuPer1k: per1k(h, 'clientCpuMs'),
  };
});
const f = (x: number, d = 1, w = 9) => x.toFixed(d).padStart(w);
console.log(
  `\nHTTP vs engine, ${describeBenchModel(benchModel)}, ${maxTokens} tokens per stream, ${numThreads} native thread(s),` +
    ` median of ${rounds} rounds; load average ${loadBefore[0]!.toFixed(2)} → ${loadAfter[0]!.toFixed(2)} on ${os.cpus().length} CPUs;` +
    ` ${((performance.now() - startedAt) / 1000).toFixed(0)} s`,
);
console.log(
  'streams | engine tok/s | http tok/s | http/engine | engine TTFT p50/p99 ms | http TTFT p50/p99 ms | CPU ms/1k tok: engine | http server | http client',
);
for (const r of rows) {
  console.log(
    `${String(r.streams).padStart(7)} | ${f(r.engineTokS)}    | ${f(r.httpTokS)}  | ${f(r.ratio * 100)}%  |` +
      ` ${f(r.engineTtftP50)} / ${f(r.engineTtftP99)}  | ${f(r.httpTtftP50)} / ${f(r.httpTtftP99)} |` +
      ` ${f(r.engineCpuPer1k, 0, 21)} | ${f(r.httpServerCpuPer1k, 0, 11)} | ${f(r.httpClientCpuPer1k, 0, 11)}`,
  );
}
const at64 = rows.find((r) => r.streams === 64)!;
console.log(`per-round http/engine at 64: ${at64.ratioPerRound.map((x) => `${(x * 100).toFixed(0)}%`).join(' ')}`);
console.log(
  `target: http >= 90% of engine tokens/s at 64 streams → ${(at64.ratio * 100).toFixed(1)}% ${at64.ratio >= 0.9 ? 'MET' : 'NOT MET'}`,
);
const out = path.join(root, 'bench/results', `http-llm-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify(
    {
      bench: 'http-llm',
      model: {
        name: benchModel.name,
        path: benchModel.path,
        randomWeights: benchModel.randomWeights,
        config: benchModel.config ?? null,
      },
      maxTokens,
      rounds,
      engineOptions,
      cpus: os.cpus().length,
      wallS: (performance.now() - startedAt) / 1000,
      loadavg: { before: loadBefore, after: loadAfter },
      node: process.version,
      rows,
      raw: results,
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote ${path.relative(root, out)}`);
process.exit(0);
