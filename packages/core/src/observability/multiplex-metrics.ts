/**
 * Prometheus series of @multiplexed models (multiplexed.ts), read from the ServeStatus at scrape time
 * like the other status gauges: what each replica holds (Ray Serve's serve_num_multiplexed_models and
 * serve_registered_multiplexed_model_id) and its cumulative loads, hits and evictions (hit rate =
 * hits / (hits + loads)).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ServeStatus } from '../contract/status.js';

export function registerMultiplexMetrics(
  ns: string,
  registers: Registry[],
  readStatus: () => ServeStatus | undefined,
): void {
  const each = (
    fn: (labels: { app: string; deployment: string; replica: string }, m: NonNullable<Models>) => void,
  ): void => {
    const status = readStatus();
    if (!status) return;
    for (const app of status.applications)
      for (const d of app.deployments)
        for (const r of d.replicas) if (r.models) fn({ app: app.name, deployment: d.name, replica: r.id }, r.models);
  };
  const labelNames = ['app', 'deployment', 'replica'];
  new Gauge({
    name: `${ns}replica_multiplexed_models`,
    help: 'Multiplexed models loaded in a replica (its @multiplexed loader), as last reported.',
    labelNames,
    registers,
    collect() {
      this.reset();
      each((l, m) => this.set(l, m.ids.length));
    },
  });
  new Gauge({
    name: `${ns}replica_multiplexed_model_loaded`,
    help: '1 for each multiplexed model a replica holds, by model id.',
    labelNames: [...labelNames, 'model'],
    registers,
    collect() {
      this.reset();
      each((l, m) => {
        for (const model of m.ids) this.set({ ...l, model }, 1);
      });
    },
  });
  const counter = (name: string, help: string, pick: (m: NonNullable<Models>) => number) =>
    new Counter({
      name: `${ns}${name}`,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        each((l, m) => this.inc(l, pick(m)));
      },
    });
  counter('multiplexed_model_loads_total', 'Multiplexed model loads a replica started (misses).', (m) => m.loads);
  counter(
    'multiplexed_model_hits_total',
    'Requests a replica served with a model it held or was loading.',
    (m) => m.hits,
  );
  counter(
    'multiplexed_model_evictions_total',
    'Multiplexed models a replica evicted (LRU beyond its capacity).',
    (m) => m.evictions,
  );
  counter(
    'multiplexed_model_load_failures_total',
    'Multiplexed model loads whose loader threw.',
    (m) => m.loadFailures,
  );
}

type Models = ServeStatus['applications'][number]['deployments'][number]['replicas'][number]['models'];
