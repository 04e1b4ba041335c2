/**
 * Core benchmark: HTTP proxy overhead against a bare fastify server, and handle call latency by placement.
 * Prints a table and writes bench/results/core-<timestamp>.json.
 *
 *   npm run bench:core -- [--duration-ms 2000] [--rounds 5] [--connections 32] [--calls 3000]
 *
 * Targets (issue 2): proxy req/s ≥ 50% of bare; p50 added latency (1 connection) < 1 ms for a worker-thread replica.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Ingress } from '../../packages/core/src/ingress/ingress.js';
import { startServe } from '../../packages/core/src/serve-instance.js';
import { measureHandleLatency } from './handle-latency.js';
import { HttpProxy } from '../../packages/core/src/ingress/http-proxy.js';
import { measureOverhead, median, startBareServer, type OverheadRound } from './http-overhead.js';
import { localTarget } from './local-target.js';
import { processApp, threadApp } from './noop-app.js';

const { values } = parseArgs({
  options: {
    'duration-ms': { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    calls: { type: 'string', default: '3000' },
  },
});
const durationMs = Number(values['duration-ms']);
const rounds = Number(values.rounds);
const connections = Number(values.connections);
const calls = Number(values.calls);

const instance = await startServe({
  applications: [
    { name: 'noop', routePrefix: '/', app: threadApp },
    { name: 'noopproc', routePrefix: '/proc', app: processApp },
  ],
});
const ingress = await Ingress.start(instance, { http: { port: 0 }, grpc: false, events: instance.events });
const bare = await startBareServer();
const proxyLocal = await HttpProxy.start(localTarget, { port: 0 });
try {
  const urls = { bare: `${bare.url}/noop`, proxyLocal: `${proxyLocal.url}/noop`, proxy: `${ingress.http!.url}/noop` };
  const body = '[{"hello":"world"}]';
  const throughput = await measureOverhead(urls, { connections, durationMs, rounds, body });
  const latency = await measureOverhead(urls, { connections: 1, durationMs, rounds, body });
  const handles = await measureHandleLatency(
    { thread: instance.getHandle('noop'), process: instance.getHandle('noopproc') },
    calls,
  );
  report(throughput, latency, handles);
} finally {
  await bare.close();
  await proxyLocal.close();
  await ingress.close();
  await instance.shutdown();
}

function report(
  throughput: OverheadRound[],
  latency: OverheadRound[],
  handles: Awaited<ReturnType<typeof measureHandleLatency>>,
): void {
  const med = (rows: OverheadRound[], target: string, key: 'rps' | 'p50Ms' | 'p99Ms') =>
    median(rows.filter((r) => r.target === target).map((r) => r.result[key]));
  const cpu = (t: string) => median(throughput.filter((r) => r.target === t).map((r) => r.cpuUsPerRequest));
  const row = (t: string) => ({
    rps: med(throughput, t, 'rps'),
    p50Ms: med(throughput, t, 'p50Ms'),
    p99Ms: med(throughput, t, 'p99Ms'),
    p50Ms1: med(latency, t, 'p50Ms'),
    p99Ms1: med(latency, t, 'p99Ms'),
    cpuUs: cpu(t),
  });
  const summary = { bare: row('bare'), proxyLocal: row('proxyLocal'), proxy: row('proxy') };
  const ratio = summary.proxy.rps / summary.bare.rps;
  const addedP50Ms = summary.proxy.p50Ms1 - summary.bare.p50Ms1;
  const f = (n: number, d = 2) => n.toFixed(d).padStart(9);
  console.log(
    `\nHTTP, ${connections} connections (req/s, latency ms) and 1 connection (latency ms); median of ${rounds} rounds of ${durationMs} ms`,
  );
  console.log(
    `${'server'.padEnd(30)}${'req/s'.padStart(9)}${'p50'.padStart(9)}${'p99'.padStart(9)}${'p50@1'.padStart(9)}${'p99@1'.padStart(9)}` +
      `${'cpu µs/req'.padStart(12)}`,
  );
  const rows = [
    ['bare fastify', summary.bare],
    ['proxy → same-thread no-op', summary.proxyLocal],
    ['proxy → worker-thread replica', summary.proxy],
  ] as const;
  for (const [name, s] of rows) {
    console.log(
      `${name.padEnd(30)}${f(s.rps, 0)}${f(s.p50Ms)}${f(s.p99Ms)}${f(s.p50Ms1, 3)}${f(s.p99Ms1, 3)}${f(s.cpuUs, 1).padStart(12)}`,
    );
  }
  console.log(
    `server CPU per request, bare / proxy→thread: ${((summary.bare.cpuUs / summary.proxy.cpuUs) * 100).toFixed(1)}%; ` +
      `bare / same-thread: ${((summary.bare.cpuUs / summary.proxyLocal.cpuUs) * 100).toFixed(1)}% (the req/s ratio a machine with a free core per thread would approach)`,
  );
  console.log(
    `proxy→thread / bare req/s: ${(ratio * 100).toFixed(1)}% (target ≥ 50%); same-thread: ${((summary.proxyLocal.rps / summary.bare.rps) * 100).toFixed(1)}%`,
  );
  console.log(
    `added p50 @1 connection, proxy→thread vs bare: ${(addedP50Ms * 1000).toFixed(0)} µs (target < 1000 µs); ` +
      `HTTP layer alone: ${((summary.proxyLocal.p50Ms1 - summary.bare.p50Ms1) * 1000).toFixed(0)} µs`,
  );
  console.log(`\nHandle call latency, ${calls} sequential no-op calls (µs)`);
  console.log(`${'replica'.padEnd(30)}${'p50'.padStart(9)}${'p99'.padStart(9)}${'mean'.padStart(9)}`);
  for (const h of handles) console.log(`${h.path.padEnd(30)}${f(h.p50Us, 0)}${f(h.p99Us, 0)}${f(h.meanUs, 0)}`);
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `core-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        bench: 'core',
        at: new Date().toISOString(),
        node: process.version,
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        params: { durationMs, rounds, connections, calls },
        summary,
        proxyOverBareRps: ratio,
        bareOverProxyCpuPerRequest: summary.bare.cpuUs / summary.proxy.cpuUs,
        addedP50MsAt1Connection: addedP50Ms,
        targets: { proxyOverBareRps: ratio >= 0.5, addedP50Under1Ms: addedP50Ms < 1 },
        rounds: { throughput, latency },
        handles,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
}
