/**
 * Direct replica-to-replica links against the relay through the parent (startServe({ directLinks })),
 * back to back in alternating rounds on the same build:
 *  - handle-call latency from inside a replica to a no-op replica (p50/p99, measured in the caller),
 *    thread → thread (and thread → process with --callee process);
 *  - the speculative pipeline's round time (pipeline, draft and target in replicas, the small test
 *    models, so that a round's handle calls are a visible share of it): wall time of a greedy
 *    completion / its rounds, median over requests.
 * Prints a table and writes bench/results/direct-links-<time>.json. On a shared machine the figures are
 * noisy: compare the two modes within a round.
 *
 *   npx tsx bench/core/direct-links.ts [--rounds 3] [--calls 2000] [--callee thread|process]
 *     [--pipeline-placement thread|process] [--requests 6] [--no-pipeline]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServe } from '../../packages/core/src/index.js';
import { models } from '../../test/helpers/models.js';
import { pipelineApp, probeApp, type Placement } from './direct-links-app.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const argv = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : fallback;
};
const rounds = Number(opt('rounds', '3'));
const calls = Number(opt('calls', '2000'));
const callee = opt('callee', 'thread') as Placement;
const pipelinePlacement = opt('pipeline-placement', 'thread') as Placement;
const requests = Number(opt('requests', '6'));
const withPipeline = !argv.includes('--no-pipeline');

const PROMPTS = ['Once upon a time, there was a little dog', 'Lily and Tom went to the park', 'Sara had a red ball'];

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const median = (xs: number[]) =>
  quantile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );

async function latency(directLinks: boolean) {
  const instance = await startServe({
    applications: [{ name: 'b', app: probeApp(callee) }],
    checkpoint: false,
    directLinks,
  });
  try {
    if (directLinks) while (instance.linkStats().links < 1) await new Promise((r) => setTimeout(r, 20));
    const samples = ((await instance.getHandle('b').measure(calls, Math.min(500, calls))) as number[]).sort(
      (a, b) => a - b,
    );
    return { p50Us: quantile(samples, 0.5), p99Us: quantile(samples, 0.99), relayed: instance.linkStats().relayed };
  } finally {
    await instance.shutdown();
  }
}

async function pipeline(directLinks: boolean) {
  const app = pipelineApp({
    target: models.stories260K,
    draft: models.llama2xs260K,
    tokenizer: models.tok512,
    placement: pipelinePlacement,
  });
  const instance = await startServe({ applications: [{ name: 'p', app }], checkpoint: false, directLinks });
  try {
    if (directLinks) while (instance.linkStats().links < 2) await new Promise((r) => setTimeout(r, 20));
    const handle = instance.getHandle('p');
    await handle.complete({ prompt: PROMPTS[0], params: { temperature: 0, maxTokens: 16 } }); // warm-up
    const perRound: number[] = [];
    let totalRounds = 0;
    for (let i = 0; i < requests; i++) {
      const t0 = performance.now();
      const out = await handle.complete({
        prompt: PROMPTS[i % PROMPTS.length],
        params: { temperature: 0, maxTokens: 64 },
      });
      perRound.push((performance.now() - t0) / out.rounds);
      totalRounds += out.rounds;
    }
    return { roundMs: median(perRound), rounds: totalRounds, relayed: instance.linkStats().relayed };
  } finally {
    await instance.shutdown();
  }
}

const rows: Record<string, unknown>[] = [];
for (let r = 0; r < rounds; r++) {
  for (const directLinks of [false, true]) {
    const mode = directLinks ? 'direct' : 'relay';
    const l = await latency(directLinks);
    rows.push({ round: r, mode, what: `handle call thread → ${callee}`, ...l });
    console.log(
      `round ${r} ${mode.padEnd(6)} handle call thread → ${callee}: p50 ${l.p50Us.toFixed(1)} µs, p99 ${l.p99Us.toFixed(1)} µs`,
    );
    if (withPipeline) {
      const p = await pipeline(directLinks);
      rows.push({ round: r, mode, what: `spec pipeline round (${pipelinePlacement})`, ...p });
      console.log(
        `round ${r} ${mode.padEnd(6)} spec pipeline round (${pipelinePlacement} draft/target): ${p.roundMs.toFixed(3)} ms`,
      );
    }
  }
}

const summary = (mode: string, what: string, key: string) =>
  median(rows.filter((x) => x.mode === mode && String(x.what).startsWith(what)).map((x) => x[key] as number));
console.log(`\nmedian over ${rounds} rounds (noisy on a shared machine):`);
for (const [what, keys] of [
  ['handle call', ['p50Us', 'p99Us']],
  ['spec pipeline', ['roundMs']],
] as const) {
  for (const key of keys) {
    const relay = summary('relay', what, key);
    const direct = summary('direct', what, key);
    if (Number.isNaN(relay) || relay === undefined) continue;
    console.log(
      `  ${what} ${key}: relay ${relay.toFixed(2)}  direct ${direct.toFixed(2)}  (direct/relay ${(direct / relay).toFixed(2)})`,
    );
  }
}
const dir = path.join(root, 'bench/results');
mkdirSync(dir, { recursive: true });
const file = path.join(dir, `direct-links-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ rounds, calls, callee, pipelinePlacement, requests, rows }, null, 2));
console.log(`wrote ${path.relative(root, file)}`);
