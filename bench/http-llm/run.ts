/**
 * HTTP overhead of the LLM server: the same load through `LLMServer` behind the HTTP proxy (SSE on
 * /v1/completions, engine in a worker-thread replica) and directly on LLMEngine, in one run, at 1, 16
 * and 64 concurrent streams. Model: the small random-weight model LLMServer serves without a model
 * (RANDOM_MODEL_CONFIG), one native thread on both paths. Target: HTTP >= 90% of engine tokens/s at 64.
 *
 * What is compared: the engine path is consumed in this process, iterating generate()'s outputs
 * directly (what a caller embedding the engine gets). The HTTP path is consumed by node:http clients in a
 * child process (client.ts), so that parsing 64 SSE streams does not take the server's event loop; the
 * server is this process (proxy on the main thread, replica in a worker thread). Both share the
 * machine's cores, so the client's CPU still competes with the server: its CPU time is reported apart.
 *
 *   npx tsx bench/http-llm/run.ts [maxTokens=64] [rounds=3]
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
import { Ingress, serve } from '@flotilla/core';
import { LLMEngine, makeRandomModel } from '@flotilla/engine';
import { RANDOM_MODEL_CONFIG } from '@flotilla/deployments';
import { BenchLLM } from './bench-llm.js';
import { engineLevel, percentile, type LevelResult } from './load.js';
import { LoadClient } from './load-client.js';

interface Measured extends LevelResult { round: number; serverCpuMs: number; clientCpuMs: number }

const LEVELS = [1, 16, 64];
const maxTokens = Number(process.argv[2] ?? 64);
const rounds = Number(process.argv[3] ?? 3);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const modelDir = path.join(os.tmpdir(), 'flotilla-bench-http-llm');
const model = await makeRandomModel(RANDOM_MODEL_CONFIG, { format: 'llama2c', dir: modelDir, seed: 0 });
const engineOptions = { numThreads: 1, device: 'cpu' as const };
const loadBefore = os.loadavg();

const engine = await LLMEngine.create({ model, ...engineOptions });
const instance = await serve.run(BenchLLM.bind({ model, ...engineOptions, auditLog: 'none' }), { name: 'bench' });
const ingress = await Ingress.start(instance, { http: { port: 0 }, grpc: false });
const url = ingress.http!.url;
const client = LoadClient.start();
// Warm-up at the widest level, so that both paths are JIT-compiled before anything is measured.
for (let i = 0; i < 2; i++) {
  await engineLevel(engine, 64, 16);
  await client.level(url, 64, 16);
}

const results: Measured[] = [];
const cpuMs = (since: NodeJS.CpuUsage) => { const d = process.cpuUsage(since); return (d.user + d.system) / 1000; };
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
    streams, engineTokS, httpTokS, ratio: httpTokS / engineTokS,
    ratioPerRound: h.map((r, i) => r.tokensPerS / e[i]!.tokensPerS),
    engineTtftP50: percentile(e.flatMap((r) => r.ttftMs), 50), engineTtftP99: percentile(e.flatMap((r) => r.ttftMs), 99),
    httpTtftP50: percentile(h.flatMap((r) => r.ttftMs), 50), httpTtftP99: percentile(h.flatMap((r) => r.ttftMs), 99),
    engineCpuPer1k: per1k(e, 'serverCpuMs'), httpServerCpuPer1k: per1k(h, 'serverCpuMs'), httpClientCpuPer1k: per1k(h, 'clientCpuMs'),
  };
});
const f = (x: number, d = 1, w = 9) => x.toFixed(d).padStart(w);
console.log(`\nHTTP vs engine, random-weight model ${JSON.stringify(RANDOM_MODEL_CONFIG)}, ${maxTokens} tokens per stream, 1 native thread,`
  + ` median of ${rounds} rounds; load average ${loadBefore[0]!.toFixed(2)} → ${loadAfter[0]!.toFixed(2)} on ${os.cpus().length} CPUs`);
console.log('streams | engine tok/s | http tok/s | http/engine | engine TTFT p50/p99 ms | http TTFT p50/p99 ms | CPU ms/1k tok: engine | http server | http client');
for (const r of rows) {
  console.log(`${String(r.streams).padStart(7)} | ${f(r.engineTokS)}    | ${f(r.httpTokS)}  | ${f(r.ratio * 100)}%  |`
    + ` ${f(r.engineTtftP50)} / ${f(r.engineTtftP99)}  | ${f(r.httpTtftP50)} / ${f(r.httpTtftP99)} |`
    + ` ${f(r.engineCpuPer1k, 0, 21)} | ${f(r.httpServerCpuPer1k, 0, 11)} | ${f(r.httpClientCpuPer1k, 0, 11)}`);
}
const at64 = rows.find((r) => r.streams === 64)!;
console.log(`per-round http/engine at 64: ${at64.ratioPerRound.map((x) => `${(x * 100).toFixed(0)}%`).join(' ')}`);
console.log(`target: http >= 90% of engine tokens/s at 64 streams → ${(at64.ratio * 100).toFixed(1)}% ${at64.ratio >= 0.9 ? 'MET' : 'NOT MET'}`);
const out = path.join(root, 'bench/results', `http-llm-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ bench: 'http-llm', model: RANDOM_MODEL_CONFIG, maxTokens, rounds, engineOptions, cpus: os.cpus().length,
  loadavg: { before: loadBefore, after: loadAfter }, node: process.version, rows, raw: results }, null, 2)}\n`);
console.log(`wrote ${path.relative(root, out)}`);
process.exit(0);
