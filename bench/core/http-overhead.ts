/**
 * Proxy vs bare server, side by side in one run: the same closed-loop load (from a separate process) on
 * (a) Flotilla's HTTP proxy calling a no-op worker-thread replica and (b) a bare fastify handler doing the
 * same work (parse the JSON body, await a no-op, serialize JSON). Rounds alternate so drift hits both.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import type { LoadResult, LoadSpec } from './load-generator.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export type ServerKind = 'bare' | 'proxyLocal' | 'proxy';

export interface OverheadRound {
  target: ServerKind;
  connections: number;
  result: LoadResult;
  /**
   * CPU time of this process (every thread: proxy, replica, bare server) per answered request, in µs,
   * less what it spends with no load at all (controller ticks, the dashboard sampler), measured just
   * before the round. Steadier than req/s on a shared machine: time spent waiting for a core is in neither.
   */
  cpuUsPerRequest: number;
}

/** A bare fastify server with the proxy's body handling and a no-op async "deployment". */
export async function startBareServer(): Promise<{ url: string; close(): Promise<void> }> {
  const app: FastifyInstance = Fastify({ logger: false });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  const noop = async (...args: unknown[]) => args[0];
  app.post('/noop', async (req, reply) => {
    const text = (req.body as Buffer | undefined)?.toString('utf8') ?? '';
    const payload = text ? JSON.parse(text) : undefined;
    const result = await noop(...(Array.isArray(payload) ? payload : [payload]));
    return reply.header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(result ?? null));
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, close: () => app.close() };
}

/** Runs the load generator in its own process and returns its result. */
export function runLoadProcess(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(here, 'load-generator.ts'), JSON.stringify(spec)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out) as LoadResult) : reject(new Error(`load generator exited ${code}`)),
    );
  });
}

export async function measureOverhead(
  urls: Record<ServerKind, string>,
  opts: {
    connections: number;
    durationMs: number;
    rounds: number;
    body: string;
  },
): Promise<OverheadRound[]> {
  const rounds: OverheadRound[] = [];
  for (let i = 0; i < opts.rounds; i++) {
    // Alternate the order so a slow-down in the middle of the run does not favour one side.
    const kinds: ServerKind[] = ['bare', 'proxyLocal', 'proxy'];
    const order = i % 2 === 0 ? kinds : [...kinds].reverse();
    for (const target of order) {
      const idle = await idleCpuUsPerMs(300);
      const cpu = process.cpuUsage();
      const started = performance.now();
      const result = await runLoadProcess({
        url: urls[target],
        connections: opts.connections,
        durationMs: opts.durationMs,
        body: opts.body,
      });
      const used = process.cpuUsage(cpu);
      const busy = Math.max(0, used.user + used.system - idle * (performance.now() - started));
      // Warm-up requests are not in result.requests; 20 per connection (load-generator.ts default).
      const answered = result.requests + result.errors + 20 * opts.connections;
      rounds.push({ target, connections: opts.connections, result, cpuUsPerRequest: busy / answered });
    }
  }
  return rounds;
}

/** CPU µs this process spends per ms of wall time while nothing is sent to it. */
async function idleCpuUsPerMs(ms: number): Promise<number> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / (performance.now() - started);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
