/** Cost accounting as pure bookkeeping (controller/cost-ledger.ts), the `cost` option's validation, the dashboard's cost point. */
import { describe, expect, it } from 'vitest';
import { CostLedger, tokenCostUsd, USAGE_METRICS } from '../../packages/core/src/controller/cost-ledger.js';
import { resolveDeploymentOptions } from '../../packages/core/src/config.js';
import { costPoint, readCounters, takeSample } from '../../packages/core/src/observability/timeseries.js';

const HOUR = 3_600_000;
const usage = (prompt: number, completion: number) => ({
  [USAGE_METRICS.promptTokens]: prompt,
  [USAGE_METRICS.completionTokens]: completion,
});

describe('CostLedger', () => {
  it('charges each replica its uptime since it started, then since the last tick', () => {
    const ledger = new CostLedger();
    const prices = { perReplicaHour: 2 };
    const a = { id: 'a', startedAtMs: 0, alive: true };
    expect(ledger.observe([a], prices, HOUR / 2).usd).toBeCloseTo(1, 12);
    const b = { id: 'b', startedAtMs: HOUR / 2, alive: true };
    expect(ledger.observe([a, b], prices, HOUR).usd).toBeCloseTo(2, 12); // a and b half an hour each
    expect(ledger.totals.usd).toBeCloseTo(3, 12);
  });

  it('prices the growth of the reported token counters, the whole count for a replica seen first', () => {
    const ledger = new CostLedger();
    const prices = { per1kPromptTokens: 0.5, per1kCompletionTokens: 2 };
    let added = ledger.observe([{ id: 'a', startedAtMs: 0, alive: true, metrics: usage(1000, 100) }], prices, 10);
    expect(added).toEqual({ usd: 0.5 + 0.2, promptTokens: 1000, completionTokens: 100 });
    added = ledger.observe([{ id: 'a', startedAtMs: 0, alive: true, metrics: usage(3000, 600) }], prices, 20);
    expect(added.promptTokens).toBe(2000);
    expect(added.completionTokens).toBe(500);
    expect(added.usd).toBeCloseTo(1 + 1, 12);
    // No new report: nothing more.
    expect(ledger.observe([{ id: 'a', startedAtMs: 0, alive: true, metrics: usage(3000, 600) }], prices, 30).usd).toBe(
      0,
    );
    expect(ledger.totals).toEqual({ usd: 2.7, promptTokens: 3000, completionTokens: 600 });
  });

  it('charges a stopped replica up to the tick that sees it stop, once; a replica with no counters by the hour only', () => {
    const ledger = new CostLedger();
    const prices = { perReplicaHour: 1, per1kPromptTokens: 1 };
    ledger.observe([{ id: 'a', startedAtMs: 0, alive: true }], prices, HOUR);
    expect(ledger.observe([{ id: 'a', startedAtMs: 0, alive: false }], prices, 2 * HOUR).usd).toBeCloseTo(1, 12);
    // Seen stopped once: a record still listed is a new sighting from its start (not expected in practice),
    // and one no longer listed costs nothing.
    expect(ledger.observe([], prices, 3 * HOUR).usd).toBe(0);
    expect(ledger.totals.usd).toBeCloseTo(2, 12);
    expect(ledger.totals.promptTokens).toBe(0);
  });

  it('ignores counters that are not finite non-negative numbers and never goes backwards', () => {
    const ledger = new CostLedger();
    const prices = { per1kCompletionTokens: 1 };
    ledger.observe([{ id: 'a', startedAtMs: 0, alive: true, metrics: usage(0, 500) }], prices, 1);
    ledger.observe(
      [{ id: 'a', startedAtMs: 0, alive: true, metrics: { [USAGE_METRICS.completionTokens]: Number.NaN } }],
      prices,
      2,
    );
    // A counter that went back was reset: the new count is new tokens.
    ledger.observe([{ id: 'a', startedAtMs: 0, alive: true, metrics: usage(0, 200) }], prices, 3);
    expect(ledger.totals.completionTokens).toBe(700);
    expect(ledger.totals.usd).toBeCloseTo(0.7, 12);
  });

  it('tokenCostUsd: tokens at per-1k prices, 0 for prices not given', () => {
    expect(tokenCostUsd({ per1kPromptTokens: 0.01, per1kCompletionTokens: 0.03 }, 2000, 1000)).toBeCloseTo(0.05, 12);
    expect(tokenCostUsd({ perReplicaHour: 5 }, 2000, 1000)).toBe(0);
  });
});

describe('the cost option', () => {
  it('resolves with zeros for prices not given, and is absent when not given', () => {
    expect(resolveDeploymentOptions('D', [{ cost: { per1kPromptTokens: 0.1 } }], 'D').cost).toEqual({
      perReplicaHour: 0,
      per1kPromptTokens: 0.1,
      per1kCompletionTokens: 0,
    });
    expect(resolveDeploymentOptions('D', [{}], 'D').cost).toBeUndefined();
    // Layers merge price by price (decorator, then .options(), then the config file).
    expect(
      resolveDeploymentOptions('D', [{ cost: { perReplicaHour: 1 } }, { cost: { per1kCompletionTokens: 2 } }], 'D')
        .cost,
    ).toEqual({ perReplicaHour: 1, per1kPromptTokens: 0, per1kCompletionTokens: 2 });
  });

  it('refuses negative or unknown prices with the option named', () => {
    expect(() => resolveDeploymentOptions('D', [{ cost: { perReplicaHour: -1 } }], 'D')).toThrow(
      /cost\.perReplicaHour/,
    );
    expect(() => resolveDeploymentOptions('D', [{ cost: { perToken: 1 } as never }], 'D')).toThrow(
      /unknown cost option 'perToken'/,
    );
    expect(() => resolveDeploymentOptions('D', [{ cost: 'cheap' as never }], 'D')).toThrow(/cost must be an object/);
  });
});

describe('the dashboard cost point', () => {
  it('shows dollars per 1K tokens since start for deployments with prices, nothing for the others', () => {
    const deployment = (name: string, cost?: { usd: number; promptTokens: number; completionTokens: number }) => ({
      name,
      status: 'HEALTHY' as const,
      targetReplicas: 1,
      replicas: [],
      queued: 0,
      ongoing: 0,
      ...(cost ? { cost } : {}),
    });
    const status = {
      startedAtMs: 0,
      applications: [
        {
          name: 'app',
          routePrefix: '/',
          status: 'RUNNING' as const,
          deployments: [
            deployment('Priced', { usd: 0.3, promptTokens: 1000, completionTokens: 500 }),
            deployment('Idle', { usd: 0.1, promptTokens: 0, completionTokens: 0 }),
            deployment('Free'),
          ],
        },
      ],
    };
    const counters = readCounters([]);
    const s = takeSample(1000, status, counters, undefined);
    expect(s.deployments['app/Priced']!.cost!.per1kTokensUsd).toBeCloseTo(0.2, 12);
    expect(s.deployments['app/Idle']!.cost).toEqual({ usd: 0.1, per1kTokensUsd: null });
    expect(s.deployments['app/Free']!.cost).toBeUndefined();
    expect(costPoint({ usd: 2, promptTokens: 1500, completionTokens: 500 })).toEqual({ usd: 2, per1kTokensUsd: 1 });
  });
});
