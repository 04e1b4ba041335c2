/**
 * Samples the instance on a timer for the dashboard: one Sample per interval in a ring buffer (5 minutes
 * at the defaults), plus the scaling decisions the controller reported. In-process and bounded, so it
 * needs no store and forgets on restart (Prometheus scraping /metrics is the place for history).
 */
import type { IngressTarget } from '../ingress/ingress-target.js';
import type { ScalingDecisionInfo } from '../contract/status.js';
import { readCounters, Ring, takeSample, type Counters, type MetricJson, type Sample } from './timeseries.js';

export interface SamplerOptions {
  /** Time between samples. Default: 1000 ms. */
  intervalMs?: number;
  /** Samples kept. Default: 300 (5 minutes at 1 s). */
  capacity?: number;
}

export interface DecisionPoint extends ScalingDecisionInfo {
  app: string;
  deployment: string;
}

export interface TimeseriesResponse {
  intervalMs: number;
  capacity: number;
  samples: Sample[];
  decisions: DecisionPoint[];
}

const MAX_DECISIONS = 200;

export class TimeseriesSampler {
  readonly intervalMs: number;
  private readonly samples: Ring<Sample>;
  private readonly decisions = new Ring<DecisionPoint>(MAX_DECISIONS);
  private readonly seenDecisions = new Set<string>();
  private prev: { t: number; counters: Counters } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly target: IngressTarget,
    private readonly registry: () => Promise<MetricJson[]>,
    options: SamplerOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 1000;
    this.samples = new Ring(options.capacity ?? 300);
  }

  start(): void {
    if (this.timer) return;
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    // The dashboard must never keep a process alive on its own.
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes one sample now; a failure (e.g. mid-shutdown) skips it rather than stopping the timer. */
  async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const counters = readCounters(await this.registry());
      const status = this.target.status();
      const t = Date.now();
      this.samples.push(takeSample(t, status, counters, this.prev));
      this.prev = { t, counters };
      for (const app of status.applications) {
        for (const d of app.deployments)
          for (const dec of d.decisions ?? []) this.addDecision({ ...dec, app: app.name, deployment: d.name });
      }
    } catch {
      // Status can throw while the instance shuts down; the next tick tries again.
    } finally {
      this.busy = false;
    }
  }

  /** Samples newer than `sinceMs` (all when omitted), and every decision kept. */
  read(sinceMs = 0): TimeseriesResponse {
    return {
      intervalMs: this.intervalMs,
      capacity: this.samples.capacity,
      samples: this.samples.toArray().filter((s) => s.t > sinceMs),
      decisions: this.decisions.toArray(),
    };
  }

  private addDecision(d: DecisionPoint): void {
    const id = `${d.app}/${d.deployment}@${d.atMs}:${d.to}`;
    if (this.seenDecisions.has(id)) return;
    this.seenDecisions.add(id);
    if (this.seenDecisions.size > MAX_DECISIONS * 4) this.seenDecisions.clear();
    this.decisions.push(d);
  }
}
