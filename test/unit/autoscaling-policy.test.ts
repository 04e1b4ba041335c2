import { describe, expect, it } from 'vitest';
import { defaultAutoscalingPolicy, type AutoscalingState } from '../../packages/core/src/controller/autoscaling-policy.js';
import type { ResolvedAutoscaling } from '../../packages/core/src/config.js';

const config: ResolvedAutoscaling = { minReplicas: 1, maxReplicas: 5, initialReplicas: 1, targetOngoingRequests: 2,
  upscaleDelayS: 2, downscaleDelayS: 10, metricsIntervalS: 1 };

function run(steps: { t: number; total: number }[], current = 1) {
  let state: AutoscalingState = {};
  const out: number[] = [];
  for (const { t, total } of steps) {
    const d = defaultAutoscalingPolicy({ config, currentReplicas: current, totalRequests: total, nowMs: t * 1000 }, state);
    state = d.state;
    current = d.replicas;
    out.push(current);
  }
  return out;
}

describe('defaultAutoscalingPolicy (Ray Serve formula)', () => {
  it('scales up to ceil(total / target) only after the upscale delay', () => {
    expect(run([{ t: 0, total: 7 }, { t: 1, total: 7 }, { t: 2, total: 7 }])).toEqual([1, 1, 4]);
  });

  it('clamps to [minReplicas, maxReplicas]', () => {
    expect(run([{ t: 0, total: 100 }, { t: 2, total: 100 }])).toEqual([1, 5]);
    expect(run([{ t: 0, total: 0 }, { t: 20, total: 0 }], 3)).toEqual([3, 1]);
  });

  it('a dip shorter than the downscale delay does not scale down (damping)', () => {
    expect(run([{ t: 0, total: 2 }, { t: 5, total: 8 }, { t: 9, total: 2 }, { t: 12, total: 2 }], 4))
      .toEqual([4, 4, 4, 4]);
    expect(run([{ t: 0, total: 2 }, { t: 10, total: 2 }], 4)).toEqual([4, 1]);
  });

  it('scales from zero at once when requests wait', () => {
    const d = defaultAutoscalingPolicy({ config: { ...config, minReplicas: 0 }, currentReplicas: 0, totalRequests: 3, nowMs: 0 }, {});
    expect(d.replicas).toBe(2);
    expect(d.reason).toMatch(/scale from zero/);
  });

  it('stays put at target', () => {
    expect(run([{ t: 0, total: 4 }, { t: 100, total: 4 }], 2)).toEqual([2, 2]);
  });
});
