/**
 * Multiplexed routing against plain power of two choices, side by side in one run (issue 22): a Zipf
 * mix of model ids over 3 replicas with room for 4 models each. The same seeded request sequence goes
 * to two fresh copies of one deployment (bench/multiplex/app.ts): one called with
 * CallOptions.multiplexedModelId (the router prefers replicas holding the id), one without (pow2 by
 * load; the id only as the argument, so each replica's LRU sees every id). Hit rate = requests served
 * by a model already loaded (or loading) / all requests, from the replicas' own counters in
 * /-/status; after a warm-up, so cold loads do not count. "ideal" is the hit rate if the 12 most
 * popular ids stayed resident and nothing else loaded.
 * Prints a table and writes bench/results/multiplex-<time>.json.
 *
 *   npx tsx bench/multiplex/run.ts [--models 20] [--zipf 1.0] [--requests 3000] [--warmup 300]
 *     [--concurrency 8] [--load-ms 20] [--seed 1]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startServe, type ServeInstance } from '../../packages/core/src/index.js';
import { BENCH_CAPACITY, benchApp } from './app.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values: opts } = parseArgs({
  options: {
    models: { type: 'string', default: '20' },
    zipf: { type: 'string', default: '1.0' },
    requests: { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '8' },
    'load-ms': { type: 'string', default: '20' },
    seed: { type: 'string', default: '1' },
  },
});
const MODELS = Number(opts.models);
const S = Number(opts.zipf);
const REQUESTS = Number(opts.requests);
const WARMUP = Number(opts.warmup);
const CONCURRENCY = Number(opts.concurrency);
const LOAD_MS = Number(opts['load-ms']);
const REPLICAS = 3;

/** mulberry32: the same sequence for both modes. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const weights = Array.from({ length: MODELS }, (_, k) => 1 / (k + 1) ** S);
const total = weights.reduce((a, b) => a + b, 0);
const probs = weights.map((w) => w / total);
function zipfSequence(n: number, random: () => number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let u = random();
    let k = 0;
    while (k < MODELS - 1 && u >= probs[k]!) u -= probs[k++]!;
    out.push(`model-${k}`);
  }
  return out;
}
const seq = zipfSequence(WARMUP + REQUESTS, rng(Number(opts.seed)));
const ideal = probs.slice(0, REPLICAS * BENCH_CAPACITY).reduce((a, b) => a + b, 0);

interface Counts {
  hits: number;
  loads: number;
  evictions: number;
}

function counts(instance: ServeInstance, app: string): Counts {
  const replicas = instance.status().applications.find((a) => a.name === app)!.deployments[0]!.replicas;
  const c = { hits: 0, loads: 0, evictions: 0 };
  for (const r of replicas) {
    c.hits += r.models?.hits ?? 0;
    c.loads += r.models?.loads ?? 0;
    c.evictions += r.models?.evictions ?? 0;
  }
  return c;
}

/** Waits until the replicas' reports account for `n` requests (stats are polled about every second). */
async function settled(instance: ServeInstance, app: string, n: number): Promise<Counts> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const c = counts(instance, app);
    if (c.hits + c.loads >= n || Date.now() > deadline) return c;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function drive(instance: ServeInstance, app: string, ids: string[], multiplex: boolean) {
  const handle = instance.getHandle(app);
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < ids.length) {
        const i = next++;
        const h = multiplex ? handle.options({ multiplexedModelId: ids[i]! }) : handle;
        const s = performance.now();
        await h.predict(ids[i]!, i);
        latencies.push(performance.now() - s);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
  return { rps: ids.length / seconds, p50Ms: q(0.5), p99Ms: q(0.99) };
}

async function main() {
  const options = { capacity: BENCH_CAPACITY, loadMs: LOAD_MS };
  const instance = await startServe({
    applications: [
      { name: 'mux', routePrefix: '/mux', app: benchApp(options) },
      { name: 'pow2', routePrefix: '/pow2', app: benchApp(options) },
    ],
    checkpoint: false,
  });
  try {
    while (instance.status().applications.some((a) => a.deployments.some((d) => d.status !== 'HEALTHY')))
      await new Promise((r) => setTimeout(r, 100));
    const rows = [];
    // Alternate the modes' phases so that both see the same machine load, warm-up first.
    const modes = [
      { name: 'multiplexed', app: 'mux', multiplex: true },
      { name: 'pow2', app: 'pow2', multiplex: false },
    ];
    for (const m of modes) await drive(instance, m.app, seq.slice(0, WARMUP), m.multiplex);
    const before = new Map<string, Counts>();
    for (const m of modes) before.set(m.app, await settled(instance, m.app, WARMUP));
    for (const m of modes) {
      const speed = await drive(instance, m.app, seq.slice(WARMUP), m.multiplex);
      const after = await settled(instance, m.app, WARMUP + REQUESTS);
      const b = before.get(m.app)!;
      const hits = after.hits - b.hits;
      const loads = after.loads - b.loads;
      rows.push({
        mode: m.name,
        hitRate: hits / Math.max(1, hits + loads),
        loads,
        evictions: after.evictions - b.evictions,
        ...speed,
      });
    }
    const fmt = (x: number, d = 1) => x.toFixed(d);
    console.log(
      `\n${MODELS} model ids, Zipf s=${S}, ${REPLICAS} replicas x ${BENCH_CAPACITY} models, ${REQUESTS} requests ` +
        `(after ${WARMUP} warm-up), concurrency ${CONCURRENCY}, load ${LOAD_MS} ms; ideal hit rate ${fmt(ideal * 100)}%`,
    );
    console.log('mode          hit rate   loads  evictions   req/s   p50 ms   p99 ms');
    for (const r of rows)
      console.log(
        `${r.mode.padEnd(12)}  ${`${fmt(r.hitRate * 100)}%`.padStart(8)}  ${String(r.loads).padStart(6)}  ` +
          `${String(r.evictions).padStart(9)}  ${fmt(r.rps, 0).padStart(6)}  ${fmt(r.p50Ms, 2).padStart(7)}  ${fmt(r.p99Ms, 2).padStart(7)}`,
      );
    const [mux, pow2] = rows;
    console.log(
      `multiplexed / pow2: hit rate ${fmt(mux!.hitRate / pow2!.hitRate, 2)}x, loads ${fmt(mux!.loads / Math.max(1, pow2!.loads), 2)}x, ` +
        `throughput ${fmt(mux!.rps / pow2!.rps, 2)}x`,
    );
    mkdirSync(path.join(root, 'bench/results'), { recursive: true });
    const file = path.join(root, `bench/results/multiplex-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(
      file,
      JSON.stringify(
        {
          models: MODELS,
          zipf: S,
          replicas: REPLICAS,
          capacity: BENCH_CAPACITY,
          requests: REQUESTS,
          warmup: WARMUP,
          concurrency: CONCURRENCY,
          loadMs: LOAD_MS,
          ideal,
          rows,
        },
        null,
        2,
      ),
    );
    console.log(`wrote ${path.relative(root, file)}`);
  } finally {
    await instance.shutdown();
  }
}

await main();
