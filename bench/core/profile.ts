/**
 * Profiles the proxy's process under load: starts the same servers as run.ts, drives one of them from a
 * separate load process, and leaves the CPU profile to cpu-profile-top.ts.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/core/profile.ts [proxy|proxyLocal|bare] [durationMs]
 *   npx tsx bench/core/cpu-profile-top.ts /tmp/prof/<file>.cpuprofile
 */
import { Ingress } from '../../packages/core/src/ingress/ingress.js';
import { HttpProxy } from '../../packages/core/src/ingress/http-proxy.js';
import { startServe } from '../../packages/core/src/serve-instance.js';
import { runLoadProcess, startBareServer, type ServerKind } from './http-overhead.js';
import { localTarget } from './local-target.js';
import { threadApp } from './noop-app.js';

// One target (for a CPU profile of it), or 'all': each in turn, printing req/s and CPU µs per request.
const kind = (process.argv[2] ?? 'all') as ServerKind | 'all';
const durationMs = Number(process.argv[3] ?? 5000);
const instance = await startServe({
  applications: [{ name: 'noop', routePrefix: '/', app: threadApp }],
  checkpoint: false,
});
const ingress = await Ingress.start(instance, { http: { port: 0 }, grpc: false, events: instance.events });
const bare = await startBareServer();
const proxyLocal = await HttpProxy.start(localTarget, { port: 0 });
try {
  const urls = { bare: `${bare.url}/noop`, proxyLocal: `${proxyLocal.url}/noop`, proxy: `${ingress.http!.url}/noop` };
  for (const target of kind === 'all' ? (['bare', 'proxyLocal', 'proxy'] as const) : [kind]) {
    const cpu = process.cpuUsage();
    const result = await runLoadProcess({
      url: urls[target],
      connections: 32,
      durationMs,
      body: '[{"hello":"world"}]',
    });
    const used = process.cpuUsage(cpu);
    const cpuUs = (used.user + used.system) / (result.requests + result.errors + 20 * 32);
    console.log(
      `${target.padEnd(12)} ${result.rps.toFixed(0).padStart(7)} req/s  p50 ${result.p50Ms.toFixed(2)} ms  cpu ${cpuUs.toFixed(1)} µs/req`,
    );
  }
} finally {
  await bare.close();
  await proxyLocal.close();
  await ingress.close();
  await instance.shutdown();
}
