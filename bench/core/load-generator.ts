/**
 * A closed-loop keep-alive HTTP load generator, run as its own process (so it never shares an event loop
 * with the server it measures): `connections` clients each send the next request as soon as the last
 * answered, for `durationMs`. Prints one JSON line: counts and latency percentiles in ms.
 *
 * Usage: node --import tsx bench/core/load-generator.ts '{"url":"http://127.0.0.1:8000/noop","connections":32,"durationMs":3000}'
 */
import http from 'node:http';

export interface LoadSpec {
  url: string;
  connections: number;
  durationMs: number;
  /** Requests sent before measuring, per connection. Default: 20. */
  warmupPerConnection?: number;
  method?: string;
  body?: string;
}

export interface LoadResult {
  requests: number;
  errors: number;
  durationS: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

function once(agent: http.Agent, spec: LoadSpec, url: URL): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        agent,
        hostname: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method: spec.method ?? 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(spec.body ?? '') },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
        res.on('error', () => resolve(false));
      },
    );
    req.on('error', () => resolve(false));
    req.end(spec.body ?? '');
  });
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const url = new URL(spec.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections });
  const warmup = spec.warmupPerConnection ?? 20;
  await Promise.all(
    Array.from({ length: spec.connections }, async () => {
      for (let i = 0; i < warmup; i++) await once(agent, spec, url);
    }),
  );
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + spec.durationMs;
  await Promise.all(
    Array.from({ length: spec.connections }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const ok = await once(agent, spec, url);
        if (ok) latencies.push(performance.now() - t0);
        else errors++;
      }
    }),
  );
  const durationS = (performance.now() - start) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const pick = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return {
    requests: latencies.length,
    errors,
    durationS,
    rps: latencies.length / durationS,
    p50Ms: pick(0.5),
    p99Ms: pick(0.99),
    meanMs: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length),
  };
}

if (process.argv[2] && import.meta.url.endsWith(process.argv[1]!.split('/').pop()!)) {
  const result = await runLoad(JSON.parse(process.argv[2]) as LoadSpec);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
