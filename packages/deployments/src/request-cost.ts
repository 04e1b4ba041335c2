/**
 * What one LLM request cost, at the prices of the deployment serving it (DeploymentOptions.cost, which
 * the replica learns through getReplicaContext()): its prompt and completion tokens × the per-1k prices.
 * LLMServer puts it on whole (not streamed) HTTP replies as `x-flotilla-cost-usd` and on every audit line
 * as `costUsd`; a stream's head leaves before its tokens are counted, so a stream's cost is in its audit
 * line only. Replica-hours are not per request: core accrues them (flotilla_cost_usd_total).
 *
 * It also keeps the replica's cumulative token counters that core's cost ledger reads from
 * autoscalingMetrics() (USAGE_METRICS), so the deployment's token cost accrues in core as well.
 */
import { getReplicaContext, tokenCostUsd, USAGE_METRICS, type CostOptions } from '@flotilla/core';
import type { Usage } from './generation.js';

export const COST_HEADER = 'x-flotilla-cost-usd';

/** The prices of the deployment this code serves, or undefined when it has none. */
export function deploymentPrices(): CostOptions | undefined {
  return getReplicaContext()?.cost;
}

/** Dollars for one request's usage at `prices`; undefined without prices. */
export function requestCostUsd(prices: CostOptions | undefined, usage: Usage): number | undefined {
  return prices ? tokenCostUsd(prices, usage.promptTokens, usage.completionTokens) : undefined;
}

/** A dollar amount for a header: fixed-point (no exponent), 10 decimals at most, trailing zeros dropped. */
export function formatUsd(usd: number): string {
  return usd.toFixed(10).replace(/\.?0+$/, '') || '0';
}

/** The replica's tokens served so far, as the counters core's cost ledger reads. */
export class UsageCounters {
  promptTokens = 0;
  completionTokens = 0;

  add(usage: Usage): void {
    this.promptTokens += usage.promptTokens;
    this.completionTokens += usage.completionTokens;
  }

  /** For autoscalingMetrics(): `{ promptTokensTotal, completionTokensTotal }`. */
  report(): Record<string, number> {
    return {
      [USAGE_METRICS.promptTokens]: this.promptTokens,
      [USAGE_METRICS.completionTokens]: this.completionTokens,
    };
  }
}
