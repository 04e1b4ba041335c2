/**
 * The HTTP path of bench/http-llm alone, for profiling the server (proxy on the main thread, replica in a
 * worker thread): `streams` concurrent SSE streams of `maxTokens` tokens, `rounds` times.
 *
 *   [ENGINE_PATH=1] [MAIN_PROFILE=FILE] [REPLICA_PROFILE=FILE] npx tsx bench/http-llm/profile.ts [streams=64] [maxTokens=128] [rounds=5]
 *
 * ENGINE_PATH=1 runs the same load on an LLMEngine in this process instead, for comparison. Prints the
 * server's CPU time per token (this process: proxy, replica thread, native). MAIN_PROFILE and
 * REPLICA_PROFILE write V8 CPU profiles of the measured rounds for the main thread (proxy) and the replica's
 * worker thread (it profiles itself: replicas run with execArgv [], so --cpu-prof does not reach them). The load client runs in a child process and is not profiled.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { Ingress, serve } from '@flotilla/core';
import { LLMEngine, makeRandomModel } from '@flotilla/engine';
import { RANDOM_MODEL_CONFIG } from '@flotilla/deployments';
import { ProfiledBenchLLM } from './bench-llm.js';
import { LoadClient } from './load-client.js';
import { engineLevel } from './load.js';

const streams = Number(process.argv[2] ?? 64);
const maxTokens = Number(process.argv[3] ?? 128);
const rounds = Number(process.argv[4] ?? 5);
const model = await makeRandomModel(RANDOM_MODEL_CONFIG, {
  format: 'llama2c',
  dir: path.join(os.tmpdir(), 'flotilla-bench-http-llm'),
  seed: 0,
});
const instance = await serve.run(ProfiledBenchLLM.bind({ model, numThreads: 1, device: 'cpu', auditLog: 'none' }), {
  name: 'bench',
});
const ingress = await Ingress.start(instance, { http: { port: 0 }, grpc: false });
const client = LoadClient.start();
await client.level(ingress.http!.url, streams, 16);
const replica = instance.getHandle('bench') as unknown as {
  startProfile(): Promise<void>;
  stopProfile(file: string): Promise<void>;
  countMessages(): Promise<void>;
  takeCounts(): Promise<{ posts: number; items: number; chunks: number }>;
  watchSteps(): Promise<void>;
  takeSteps(): Promise<{ steps: number; meanGapMs: number; meanStepMs: number }>;
};
await replica.countMessages();
await replica.watchSteps();
await replica.takeSteps();
await replica.takeCounts();
const replicaProfile = process.env.REPLICA_PROFILE;
const mainProfile = process.env.MAIN_PROFILE;
const session = new Session();
if (replicaProfile) await replica.startProfile();
if (mainProfile) {
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
}
const cpu0 = process.cpuUsage();
const threads0 = threadTimes();
let tokens = 0;
const t0 = performance.now();
const enginePath =
  process.env.ENGINE_PATH === '1' ? await LLMEngine.create({ model, numThreads: 1, device: 'cpu' }) : undefined;
if (enginePath) await engineLevel(enginePath, streams, 16);
for (let i = 0; i < rounds; i++) {
  const result = enginePath
    ? await engineLevel(enginePath, streams, maxTokens)
    : (await client.level(ingress.http!.url, streams, maxTokens)).result;
  console.log(`round ${i}: ${result.tokensPerS.toFixed(0)} tok/s`);
  tokens += result.tokens;
}
const cpu = process.cpuUsage(cpu0);
const counts = await replica.takeCounts();
const threads1 = threadTimes();
const steps = await replica.takeSteps();
if (!enginePath) {
  console.log(
    `engine steps: ${steps.steps}, mean ${steps.meanStepMs.toFixed(2)} ms each (schedule + native step + update),` +
      ` mean gap to the next step's launch ${steps.meanGapMs.toFixed(2)} ms`,
  );
}
const perThread = [...threads1]
  .map(([tid, t]) => [tid, t.name, ((t.ticks - (threads0.get(tid)?.ticks ?? 0)) * 10_000) / tokens] as const)
  .filter(([, , us]) => us >= 1)
  .sort((a, b) => b[2] - a[2]);
console.log(
  `CPU µs/token by thread: ${perThread.map(([tid, name, us]) => `${name}#${tid} ${us.toFixed(1)}`).join(', ')}`,
);
console.log(
  `per 1000 tokens: ${((1000 * counts.chunks) / tokens).toFixed(0)} HTTP chunks, ${((1000 * counts.posts) / tokens).toFixed(0)} postMessages ` +
    `carrying ${((1000 * counts.items) / tokens).toFixed(0)} messages`,
);
console.log(
  `server CPU ${((cpu.user + cpu.system) / tokens).toFixed(1)} µs/token (user ${(cpu.user / tokens).toFixed(1)}, system ${(cpu.system / tokens).toFixed(1)}), ` +
    `${((tokens * 1000) / (performance.now() - t0)).toFixed(0)} tok/s overall`,
);
if (mainProfile) writeFileSync(mainProfile, JSON.stringify((await session.post('Profiler.stop')).profile));
if (replicaProfile) await replica.stopProfile(replicaProfile);
client.close();
await ingress.close();
await instance.shutdown();
process.exit(0);

/** utime+stime (clock ticks, 100/s) of every thread of this process, from /proc (Linux only; empty elsewhere). */
function threadTimes(): Map<string, { name: string; ticks: number }> {
  const out = new Map<string, { name: string; ticks: number }>();
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, { name, ticks: Number(fields[11]) + Number(fields[12]) });
    }
  } catch {
    /* not Linux */
  }
  return out;
}
