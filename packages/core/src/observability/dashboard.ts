/**
 * The live dashboard: a static page (packages/core/src/observability/dashboard: plain HTML, CSS and JS, no build
 * step) at /-/dashboard that polls /-/status and /-/timeseries, the sampler's JSON.
 * One hook for the HTTP proxy: registerDashboard(app, { target, metrics }).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { FlotillaMetrics } from './metrics.js';
import { TimeseriesSampler, type SamplerOptions } from './dashboard-sampler.js';
import type { IngressTarget } from '../ingress/ingress-target.js';
import { parsePrometheusText } from './prom-text.js';

export interface DashboardOptions extends SamplerOptions {
  target: IngressTarget;
  /** What /metrics serves: the sampler reads rates, latencies and LLM figures from its scrape. */
  metrics: FlotillaMetrics;
}

const ASSETS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'dashboard');
const ASSETS: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'charts.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
};

/** Adds /-/dashboard (+ its assets) and /-/timeseries; the sampler stops when the server closes. */
export function registerDashboard(app: FastifyInstance, options: DashboardOptions): TimeseriesSampler {
  // Read once at start: the assets are tiny, and a missing file should fail at start-up, not per request.
  const files = new Map(Object.keys(ASSETS).map((name) => [name, readFileSync(path.join(ASSETS_DIR, name))]));
  const sampler = new TimeseriesSampler(
    options.target,
    async () => parsePrometheusText((await options.metrics.scrape()).body),
    options,
  );
  const page = (name: string) => async (_req: unknown, reply: FastifyReply) =>
    reply.type(ASSETS[name]!).header('cache-control', 'no-cache').send(files.get(name)!);
  app.get('/-/dashboard', page('index.html'));
  app.get('/-/dashboard/', page('index.html'));
  for (const name of Object.keys(ASSETS)) app.get(`/-/dashboard/${name}`, page(name));
  app.get('/-/timeseries', async (req, reply) => {
    const since = Number((req.query as { since?: string }).since ?? 0);
    return reply
      .type('application/json; charset=utf-8')
      .send(JSON.stringify(sampler.read(Number.isFinite(since) ? since : 0)));
  });
  app.addHook('onClose', async () => sampler.stop());
  sampler.start();
  return sampler;
}
