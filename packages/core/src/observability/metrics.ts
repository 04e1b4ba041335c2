/**
 * Flotilla's Prometheus metrics, all in one namespace `flotilla_`.
 *
 * Request metrics are observed where requests enter (the HTTP and gRPC proxies). Replica counts, health,
 * ongoing and queued requests are read from the instance's ServeStatus at scrape time, so the runtime
 * needs no metric calls in its hot path and the numbers can never drift from what `serve status` shows.
 * Per-deployment calls (including inner hops between deployments) and batch sizes come from the
 * instance's RuntimeEvents (see `observeRuntime`).
 */
import {
  AggregatorRegistry,
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type MetricObjectWithValues,
  type MetricValue,
} from 'prom-client';
import type { ReplicaMetrics, ServeStatus } from '../contract/status.js';
import { SeriesCounter, SeriesHistogram, type CounterSeries, type HistogramSeries } from './metrics-series.js';
import { registerMultiplexMetrics } from './multiplex-metrics.js';
import type { BatchEvent, RequestEvent, RuntimeEvents, ScalingDecisionEvent } from '../runtime-events.js';

export const METRICS_NAMESPACE = 'flotilla_';

/** Latency buckets in seconds: sub-millisecond proxy hops up to multi-minute LLM generations. */
const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

export type Protocol = 'http' | 'grpc';

/** Labels of one finished request. `route` is the route prefix (HTTP) or the gRPC method path. */
export interface RequestLabels {
  app: string;
  deployment: string;
  route: string;
  method: string;
  protocol: Protocol;
}

/** One request label set's series, bound once (metrics-series.ts explains why). */
interface BoundRequest {
  labels: Record<string, string>;
  byStatus: Map<string, CounterSeries>;
  byCode: Map<string, CounterSeries>;
  latency: HistogramSeries;
  /** Deployment calls only: all of them, whatever the outcome. */
  total?: CounterSeries;
}

export interface MetricsOptions {
  /** Registry to register into. Default: a fresh Registry, so two instances in one process never clash. */
  registry?: Registry;
  /** Read at every scrape for replica, queue and health gauges. Default: none (those gauges stay empty). */
  status?: () => ServeStatus;
  /** Gathers the metrics replicas expose (collectMetrics()), appended to each scrape with app/deployment/replica labels. Default: none. */
  replicaMetrics?: () => Promise<ReplicaMetrics[]>;
  /** Also export Node's process metrics (CPU, heap, event-loop lag) under `flotilla_`. Default: true. */
  processMetrics?: boolean;
}

export class FlotillaMetrics {
  readonly registry: Registry;
  private readonly requests: SeriesCounter;
  private readonly errors: SeriesCounter;
  private readonly latency: SeriesHistogram;
  /** Requests inside the proxies, by protocol; read by the proxy_ongoing_requests gauge at scrape time. */
  private readonly ongoing = new Map<string, number>();
  private readonly bound = new Map<string, BoundRequest>();
  private readonly batchSizes: Histogram<string>;
  private readonly deploymentCalls: SeriesCounter;
  private readonly deploymentErrors: SeriesCounter;
  private readonly deploymentLatency: SeriesHistogram;
  private readonly boundCalls = new Map<string, BoundRequest>();
  private readonly scalingDecisions: Counter<string>;
  private statusSource: (() => ServeStatus) | undefined;
  private readonly replicaMetrics: (() => Promise<ReplicaMetrics[]>) | undefined;

  constructor(options: MetricsOptions = {}) {
    this.registry = options.registry ?? new Registry();
    this.statusSource = options.status;
    this.replicaMetrics = options.replicaMetrics;
    const registers = [this.registry];
    const ns = METRICS_NAMESPACE;
    this.requests = new SeriesCounter(
      `${ns}requests_total`,
      'Requests handled by the proxies, by final status.',
      registers,
    );
    this.errors = new SeriesCounter(
      `${ns}request_errors_total`,
      'Requests that failed, by error code (BAD_REQUEST, BACK_PRESSURE, ...).',
      registers,
    );
    this.latency = new SeriesHistogram(
      `${ns}request_latency_seconds`,
      'End-to-end request latency seen by the proxy (streams: until the last chunk).',
      LATENCY_BUCKETS,
      registers,
    );
    const ongoing = this.ongoing;
    new Gauge({
      name: `${ns}proxy_ongoing_requests`,
      help: 'Requests currently inside a proxy.',
      labelNames: ['protocol'],
      registers,
      collect() {
        for (const [protocol, n] of ongoing) this.set({ protocol }, n);
      },
    });
    this.batchSizes = new Histogram({
      name: `${ns}batch_size`,
      help: 'Sizes of the batches formed by @batch methods.',
      labelNames: ['app', 'deployment', 'method'],
      buckets: BATCH_BUCKETS,
      registers,
    });
    this.deploymentCalls = new SeriesCounter(
      `${ns}deployment_requests_total`,
      'Calls routed to a deployment (caller: ingress or another replica).',
      registers,
    );
    this.deploymentErrors = new SeriesCounter(
      `${ns}deployment_request_errors_total`,
      'Calls to a deployment that failed, by error code.',
      registers,
    );
    this.deploymentLatency = new SeriesHistogram(
      `${ns}deployment_request_latency_seconds`,
      'Latency of calls to a deployment, measured at the caller.',
      LATENCY_BUCKETS,
      registers,
    );
    this.scalingDecisions = new Counter({
      name: `${ns}scaling_decisions_total`,
      help: "Changes of a deployment's target replica count, by reason (scale-up, scale-down, scale-from-zero, bounds, config, restored).",
      labelNames: ['app', 'deployment', 'reason'],
      registers,
    });
    this.registerStatusGauges(registers);
    this.registerCostCounters(registers);
    registerMultiplexMetrics(METRICS_NAMESPACE, registers, () => this.readStatus());
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: ns });
  }

  /** Replaces the status source (e.g. once the instance that owns the proxies is up). */
  setStatusSource(status: () => ServeStatus): void {
    this.statusSource = status;
  }

  /** Marks a request as started; call the returned function exactly once when it ends. */
  startRequest(labels: RequestLabels): (status: string, errorCode?: string) => void {
    const started = performance.now();
    this.requestStarted(labels.protocol);
    return (status, errorCode) => this.requestFinished(labels, status, (performance.now() - started) / 1000, errorCode);
  }

  /** A request entered a proxy (the ongoing gauge); pair with requestFinished. */
  requestStarted(protocol: Protocol): void {
    this.ongoing.set(protocol, (this.ongoing.get(protocol) ?? 0) + 1);
  }

  /** A request left a proxy: counts it by status (and error code) and observes its latency. */
  requestFinished(labels: RequestLabels, status: string, seconds: number, errorCode?: string): void {
    this.ongoing.set(labels.protocol, (this.ongoing.get(labels.protocol) ?? 1) - 1);
    const key = `${labels.app}\u0000${labels.deployment}\u0000${labels.route}\u0000${labels.method}\u0000${labels.protocol}`;
    let b = this.bound.get(key);
    if (!b) {
      b = this.bind(this.latency, key, {
        app: labels.app,
        deployment: labels.deployment,
        route: labels.route,
        method: labels.method,
        protocol: labels.protocol,
      });
      this.bound.set(key, b);
    }
    this.count(this.requests, b, b.byStatus, 'status', status);
    if (errorCode) this.count(this.errors, b, b.byCode, 'code', errorCode);
    this.latency.observe(b.latency, seconds);
  }

  observeBatchSize(app: string, deployment: string, method: string, size: number): void {
    this.batchSizes.observe({ app, deployment, method }, size);
  }

  /** Observes the runtime's request and batch events; returns a function that stops observing. */
  observeRuntime(events: RuntimeEvents): () => void {
    const onRequest = (e: RequestEvent): void => {
      const key = `${e.app}\u0000${e.deployment}\u0000${e.method}\u0000${e.caller}`;
      let b = this.boundCalls.get(key);
      if (!b) {
        b = this.bind(this.deploymentLatency, key, {
          app: e.app,
          deployment: e.deployment,
          method: e.method,
          caller: e.caller,
        });
        this.boundCalls.set(key, b);
      }
      b.total ??= this.deploymentCalls.series(key, b.labels);
      b.total.value++;
      if (!e.ok) this.count(this.deploymentErrors, b, b.byCode, 'code', e.errorCode ?? 'INTERNAL');
      this.deploymentLatency.observe(b.latency, e.durationMs / 1000);
    };
    const onBatch = (e: BatchEvent): void => this.observeBatchSize(e.app, e.deployment, e.method, e.size);
    const onDecision = (e: ScalingDecisionEvent): void => {
      this.scalingDecisions.inc({ app: e.app, deployment: e.deployment, reason: e.reason });
    };
    events.on('request', onRequest);
    events.on('batch', onBatch);
    events.on('scaling-decision', onDecision);
    return () => {
      events.off('request', onRequest);
      events.off('batch', onBatch);
      events.off('scaling-decision', onDecision);
    };
  }

  private bind(latency: SeriesHistogram, key: string, labels: Record<string, string>): BoundRequest {
    return { labels, byStatus: new Map(), byCode: new Map(), latency: latency.series(key, labels) };
  }

  /** Adds one to the series of `b`'s labels plus `name`=`value` (status or error code). */
  private count(
    counter: SeriesCounter,
    b: BoundRequest,
    cache: Map<string, CounterSeries>,
    name: string,
    value: string,
  ): void {
    let s = cache.get(value);
    if (!s) {
      s = counter.series(`${JSON.stringify(b.labels)}\u0000${value}`, { ...b.labels, [name]: value });
      cache.set(value, s);
    }
    s.value++;
  }

  /** The exposition text for GET /metrics: the proxy's own metrics, then those the replicas expose. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    const own = await this.registry.metrics();
    const replicas = (await this.replicaMetrics?.().catch(() => [])) ?? [];
    if (replicas.length === 0) return { contentType: this.registry.contentType, body: own };
    // Each replica's series get app/deployment/replica labels, so merging never sums two replicas together.
    const labelled = replicas.map((r) =>
      (r.metrics as MetricObjectWithValues<MetricValue<string>>[]).map((m) => ({
        ...m,
        values: m.values.map((v) => ({
          ...v,
          labels: { ...v.labels, app: r.app, deployment: r.deployment, replica: r.replica },
        })),
      })),
    );
    try {
      return {
        contentType: this.registry.contentType,
        body: `${own}\n${await AggregatorRegistry.aggregate(labelled).metrics()}`,
      };
    } catch {
      // Replicas exposing clashing metric types must not break the proxy's own scrape.
      return { contentType: this.registry.contentType, body: own };
    }
  }

  private registerStatusGauges(registers: Registry[]): void {
    const ns = METRICS_NAMESPACE;
    const metrics = this;
    const fromStatus = (
      name: string,
      help: string,
      labelNames: string[],
      fill: (g: Gauge<string>, s: ServeStatus) => void,
    ): void => {
      new Gauge({
        name: `${ns}${name}`,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          const status = metrics.readStatus();
          if (status) fill(this, status);
        },
      });
    };
    fromStatus(
      'deployment_ongoing_requests',
      'Requests executing in the replicas of a deployment.',
      ['app', 'deployment'],
      (g, s) => eachDeployment(s, (app, d) => g.set({ app, deployment: d.name }, d.ongoing)),
    );
    fromStatus(
      'deployment_queued_requests',
      'Requests waiting in callers for a replica of a deployment.',
      ['app', 'deployment'],
      (g, s) => eachDeployment(s, (app, d) => g.set({ app, deployment: d.name }, d.queued)),
    );
    fromStatus('deployment_target_replicas', 'Replicas the controller aims for.', ['app', 'deployment'], (g, s) =>
      eachDeployment(s, (app, d) => g.set({ app, deployment: d.name }, d.targetReplicas)),
    );
    fromStatus(
      'deployment_current_replicas',
      'Replicas of a deployment that are RUNNING (serving).',
      ['app', 'deployment'],
      (g, s) =>
        eachDeployment(s, (app, d) =>
          g.set({ app, deployment: d.name }, d.replicas.filter((r) => r.state === 'RUNNING').length),
        ),
    );
    fromStatus(
      'deployment_healthy',
      '1 when the deployment is HEALTHY, else 0.',
      ['app', 'deployment', 'status'],
      (g, s) =>
        eachDeployment(s, (app, d) =>
          g.set({ app, deployment: d.name, status: d.status }, d.status === 'HEALTHY' ? 1 : 0),
        ),
    );
    fromStatus('replicas', 'Replicas by state.', ['app', 'deployment', 'state'], (g, s) =>
      eachDeployment(s, (app, d) => {
        const counts = new Map<string, number>();
        for (const r of d.replicas) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
        for (const [state, n] of counts) g.set({ app, deployment: d.name, state }, n);
      }),
    );
    fromStatus(
      'replica_healthy',
      '1 when the replica is RUNNING, else 0.',
      ['app', 'deployment', 'replica', 'placement'],
      (g, s) =>
        eachDeployment(s, (app, d) => {
          for (const r of d.replicas)
            g.set({ app, deployment: d.name, replica: r.id, placement: r.placement }, r.state === 'RUNNING' ? 1 : 0);
        }),
    );
  }

  /**
   * Cost accounting from the status (controller/cost-ledger.ts), for deployments with `cost` prices:
   * counters whose totals live in the controller, so every scrape reads them whole.
   */
  private registerCostCounters(registers: Registry[]): void {
    const metrics = this;
    new Counter({
      name: `${METRICS_NAMESPACE}cost_usd_total`,
      help: 'What a deployment has cost in US dollars: replica-hours and reported tokens at its cost prices.',
      labelNames: ['application', 'deployment'],
      registers,
      collect() {
        this.reset();
        const status = metrics.readStatus();
        if (status)
          eachDeployment(status, (application, d) => {
            if (d.cost) this.inc({ application, deployment: d.name }, d.cost.usd);
          });
      },
    });
    new Counter({
      name: `${METRICS_NAMESPACE}deployment_tokens_total`,
      help: 'Tokens the replicas of a deployment with cost prices reported, by kind (prompt, completion).',
      labelNames: ['application', 'deployment', 'kind'],
      registers,
      collect() {
        this.reset();
        const status = metrics.readStatus();
        if (status)
          eachDeployment(status, (application, d) => {
            if (!d.cost) return;
            this.inc({ application, deployment: d.name, kind: 'prompt' }, d.cost.promptTokens);
            this.inc({ application, deployment: d.name, kind: 'completion' }, d.cost.completionTokens);
          });
      },
    });
  }

  private readStatus(): ServeStatus | undefined {
    try {
      return this.statusSource?.();
    } catch {
      // A scrape must never fail because the instance is mid-shutdown; empty gauges say enough.
      return undefined;
    }
  }
}

function eachDeployment(
  status: ServeStatus,
  fn: (app: string, d: ServeStatus['applications'][number]['deployments'][number]) => void,
): void {
  for (const app of status.applications) for (const d of app.deployments) fn(app.name, d);
}
