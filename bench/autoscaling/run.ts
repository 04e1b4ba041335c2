/**
 * Autoscaling bench: time from a load step to the new replicas serving, with a timeline of replicas,
 * queue length and latency. Prints a table and writes bench/results/autoscaling-<timestamp>.json.
 *
 *   npx tsx bench/autoscaling/run.ts [--concurrency 16] [--work-ms 200] [--sample-ms 250] [--rounds 1] [--compare]
 *
 * Target (issue 7): under 5 s from the step to all new replicas serving, with metricsIntervalS 1 and
 * upscaleDelayS 2 (Ray Serve's defaults react in about 40 s). The time includes starting the replicas'
 * worker threads, which on a loaded machine dominates: compare `decisionS` (the controller's part) with
 * `servingS`. The controller boots those workers while the upscale waits out its delay (prestartWorkers);
 * `--compare` alternates rounds with and without that and prints the ratio of the medians.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startServe } from '../../packages/core/src/serve-instance.js';
import { stepApp } from './step-app.js';

const { values } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '16' },
    'work-ms': { type: 'string', default: '200' },
    'sample-ms': { type: 'string', default: '250' },
    rounds: { type: 'string', default: '1' },
    compare: { type: 'boolean', default: false },
  },
});
const concurrency = Number(values.concurrency);
const workMs = Number(values['work-ms']);
const sampleMs = Number(values['sample-ms']);
const rounds = Number(values.rounds);
// Steady state wants concurrency / targetOngoingRequests replicas, capped at maxReplicas (4).
const wanted = Math.min(4, Math.ceil(concurrency / 2));

interface Sample {
  tS: number;
  target: number;
  running: number;
  queued: number;
  p50Ms: number;
  done: number;
}
interface Round {
  prestart: boolean;
  decisionS?: number;
  servingS?: number;
  timeline: Sample[];
  decisions: unknown[];
}

async function step(prestart: boolean): Promise<Round> {
  const instance = await startServe({
    applications: [{ name: 'step', app: stepApp }],
    checkpoint: false,
    prestartWorkers: prestart,
  });
  const handle = instance.getHandle('step');
  const deployment = () => instance.status().applications[0]!.deployments[0]!;
  const latencies: number[] = [];
  const timeline: Sample[] = [];
  let loaded = true;
  const stepAt = performance.now();
  const load = Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (loaded) {
        const t0 = performance.now();
        await handle.work(workMs);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  let decisionS: number | undefined;
  let servingS: number | undefined;
  while (servingS === undefined || (performance.now() - stepAt) / 1000 < servingS + 2) {
    await new Promise((r) => setTimeout(r, sampleMs));
    const d = deployment();
    const running = d.replicas.filter((r) => r.state === 'RUNNING').length;
    const tS = (performance.now() - stepAt) / 1000;
    const window = latencies.splice(0).sort((a, b) => a - b);
    timeline.push({
      tS,
      target: d.targetReplicas,
      running,
      queued: d.queued,
      p50Ms: window[Math.floor(window.length / 2)] ?? NaN,
      done: window.length,
    });
    if (decisionS === undefined && d.targetReplicas > 1) decisionS = tS;
    if (servingS === undefined && running >= wanted) servingS = tS;
    if (tS > 120) break;
  }
  loaded = false;
  await load;
  const decisions = deployment().decisions ?? [];
  await instance.shutdown();
  return { prestart, decisionS, servingS, timeline, decisions };
}

function printTimeline(r: Round): void {
  console.log(
    `\nload step (${r.prestart ? 'prestarted workers' : 'cold workers'}): ${concurrency} concurrent callers of a ${workMs} ms call; ` +
      '2 slots per replica, target 2 ongoing per replica',
  );
  console.log('   t (s)  target  running  queued  p50 (ms)  done');
  for (const s of r.timeline) {
    console.log(
      `${s.tS.toFixed(2).padStart(8)}  ${String(s.target).padStart(6)}  ${String(s.running).padStart(7)}  ${String(s.queued).padStart(6)}` +
        `  ${Number.isNaN(s.p50Ms) ? '        -' : s.p50Ms.toFixed(0).padStart(8)}  ${String(s.done).padStart(4)}`,
    );
  }
  console.log(
    `first scale-up decision: ${r.decisionS?.toFixed(2) ?? '-'} s; ${wanted} replicas serving: ${r.servingS?.toFixed(2) ?? 'not reached'} s`,
  );
  for (const d of r.decisions as { from: number; to: number; reason: string; message: string }[]) {
    console.log(`  ${d.from} → ${d.to}  ${d.reason}  (${d.message})`);
  }
}

// --compare alternates prestarted and cold rounds, so both see the same machine (a ratio, not absolutes).
const results: Round[] = [];
for (let i = 0; i < rounds; i++) {
  for (const prestart of values.compare ? [true, false] : [true]) results.push(await step(prestart));
}
for (const r of results) printTimeline(r);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = (prestart: boolean) => {
  const rs = results.filter((r) => r.prestart === prestart);
  return {
    rounds: rs.length,
    decisionS: median(rs.map((r) => r.decisionS ?? NaN)),
    servingS: median(rs.map((r) => r.servingS ?? NaN)),
  };
};
const warm = summary(true);
const cold = values.compare ? summary(false) : undefined;
console.log('\n            rounds  decision (s)  serving (s)   (medians)');
console.log(
  `prestarted  ${String(warm.rounds).padStart(6)}  ${warm.decisionS?.toFixed(2).padStart(12)}  ${warm.servingS?.toFixed(2).padStart(11)}`,
);
if (cold) {
  console.log(
    `cold        ${String(cold.rounds).padStart(6)}  ${cold.decisionS?.toFixed(2).padStart(12)}  ${cold.servingS?.toFixed(2).padStart(11)}`,
  );
  console.log(`serving time, prestarted / cold: ${((warm.servingS ?? NaN) / (cold.servingS ?? NaN)).toFixed(2)}`);
}

const out = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'results',
  `autoscaling-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(
  out,
  JSON.stringify(
    {
      concurrency,
      workMs,
      wanted,
      prestarted: warm,
      cold,
      rounds: results,
      host: { cpus: os.availableParallelism(), load: os.loadavg() },
    },
    null,
    2,
  ),
);
console.log(`wrote ${path.relative(process.cwd(), out)}`);
