/**
 * Cost accounting for one deployment, as pure bookkeeping over plain data: every controller tick hands
 * it the replicas that exist (id, since when, whether still alive, the usage counters they last reported)
 * and the prices (DeploymentOptions.cost), and it adds
 *
 * - replica-hours: each replica's time alive since the last tick (from its start the first time it is
 *   seen; a replica that has stopped is charged up to the tick that saw it stop, once), × perReplicaHour;
 * - tokens: the growth of each replica's cumulative counters (USAGE_METRICS) since the last report seen
 *   (the whole count for a replica seen the first time: its counters start at 0), × the per-1k prices.
 *
 * Totals only grow. Core knows nothing of models: a deployment that reports no counters is charged by
 * the hour only.
 */
import type { CostOptions } from '../contract/deployment-options.js';

/** The cumulative counters a replica reports in its autoscalingMetrics() for token prices. */
export const USAGE_METRICS = {
  promptTokens: 'promptTokensTotal',
  completionTokens: 'completionTokensTotal',
} as const;

/** The names in USAGE_METRICS: counters, not load, so the autoscaler's samples leave them out. */
export const USAGE_METRIC_NAMES: ReadonlySet<string> = new Set(Object.values(USAGE_METRICS));

export interface CostTotals {
  usd: number;
  promptTokens: number;
  completionTokens: number;
}

/** One replica as a tick sees it. */
export interface ReplicaUsage {
  id: string;
  startedAtMs: number;
  /** False once the replica has stopped: charged up to now one last time, then forgotten. */
  alive: boolean;
  /** Its last report (USAGE_METRICS among others); undefined before the first. */
  metrics?: Record<string, number>;
}

/** Dollars for a number of tokens at the given prices (0 for prices not given). Pure. */
export function tokenCostUsd(prices: CostOptions, promptTokens: number, completionTokens: number): number {
  return (
    (promptTokens * (prices.per1kPromptTokens ?? 0) + completionTokens * (prices.per1kCompletionTokens ?? 0)) / 1000
  );
}

interface Seen {
  lastMs: number;
  promptTokens: number;
  completionTokens: number;
}

export class CostLedger {
  readonly totals: CostTotals = { usd: 0, promptTokens: 0, completionTokens: 0 };
  private readonly seen = new Map<string, Seen>();

  /** Accrues what `replicas` cost since the last call; returns what this call added. */
  observe(replicas: readonly ReplicaUsage[], prices: CostOptions, nowMs: number): CostTotals {
    const added: CostTotals = { usd: 0, promptTokens: 0, completionTokens: 0 };
    const hourly = prices.perReplicaHour ?? 0;
    for (const r of replicas) {
      let s = this.seen.get(r.id);
      if (!s) {
        s = { lastMs: r.startedAtMs, promptTokens: 0, completionTokens: 0 };
        this.seen.set(r.id, s);
      }
      const ms = Math.max(0, nowMs - s.lastMs);
      s.lastMs = Math.max(s.lastMs, nowMs);
      added.usd += (ms / 3_600_000) * hourly;
      const prompt = counter(r.metrics, USAGE_METRICS.promptTokens);
      const completion = counter(r.metrics, USAGE_METRICS.completionTokens);
      // A counter that went backwards was reset (it cannot be on one replica; be safe): count it afresh.
      const dPrompt = prompt === undefined ? 0 : prompt >= s.promptTokens ? prompt - s.promptTokens : prompt;
      const dCompletion =
        completion === undefined ? 0 : completion >= s.completionTokens ? completion - s.completionTokens : completion;
      if (prompt !== undefined) s.promptTokens = prompt;
      if (completion !== undefined) s.completionTokens = completion;
      added.promptTokens += dPrompt;
      added.completionTokens += dCompletion;
      added.usd += tokenCostUsd(prices, dPrompt, dCompletion);
      if (!r.alive) this.seen.delete(r.id);
    }
    // Replicas gone without a last sighting (reaped between ticks) were charged up to the tick before.
    const present = new Set(replicas.map((r) => r.id));
    for (const id of this.seen.keys()) if (!present.has(id)) this.seen.delete(id);
    this.totals.usd += added.usd;
    this.totals.promptTokens += added.promptTokens;
    this.totals.completionTokens += added.completionTokens;
    return added;
  }
}

function counter(metrics: Record<string, number> | undefined, name: string): number | undefined {
  const v = metrics?.[name];
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}
