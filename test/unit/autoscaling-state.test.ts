import { describe, expect, it } from 'vitest';
import { AutoscalingStateManager } from '../../packages/core/src/controller/autoscaling-state.js';
import { maxReplacing, planReplicas, type PlannedReplica } from '../../packages/core/src/controller/rolling-update.js';
import type { ResolvedAutoscaling } from '../../packages/core/src/contract/autoscaling.js';

const config: ResolvedAutoscaling = {
  minReplicas: 0,
  maxReplicas: 10,
  initialReplicas: 1,
  targetOngoingRequests: 2,
  upscaleDelayS: 2,
  downscaleDelayS: 10,
  metricsIntervalS: 1,
  lookBackPeriodS: 3,
  upscalingFactor: 1,
  downscalingFactor: 1,
};

describe('AutoscalingStateManager', () => {
  it('samples every metricsIntervalS and averages over the look-back window', () => {
    const m = new AutoscalingStateManager(config, undefined);
    const loads = [0, 0, 6, 6, 6, 6];
    loads.forEach((ongoing, s) => {
      for (let tick = 0; tick < 10; tick++) {
        m.report(s * 1000 + tick * 100, () => ({ ongoing, queued: 1, custom: { kvCacheUsage: 0.5 }, reporting: 1 }));
      }
    });
    // samples at 2, 3, 4, 5 s survive a 3 s window ending at 5 s
    expect(m.window()).toEqual({ ongoing: 6, queued: 1, custom: { kvCacheUsage: 0.5 }, reporting: 1 });
  });

  it('returns a decision record only when the target changes, with from, to and reason', () => {
    const m = new AutoscalingStateManager(config, undefined);
    m.report(0, () => ({ ongoing: 0, queued: 0, custom: {}, reporting: 0 }));
    expect(m.update(0, 0, 0, 0)).toBeUndefined();
    expect(m.update(100, 0, 0, 3)).toMatchObject({ from: 0, to: 2, reason: 'scale-from-zero' });
  });

  it('uses the deployment policy over the instance fallback, and keeps the policy state', () => {
    const m = new AutoscalingStateManager(config, (c) => ({
      replicas: 7,
      state: { upSinceMs: c.nowMs },
      reason: 'scale-up',
      message: 'x',
    }));
    expect(
      m.update(5, 1, 1, 0, () => {
        throw new Error('not this one');
      }),
    ).toMatchObject({ to: 7 });
    expect(m.state).toEqual({ upSinceMs: 5 });
  });
});

const r = (id: string, version: string, state: PlannedReplica['state'] = 'RUNNING', ongoing = 0): PlannedReplica => ({
  id,
  version,
  state,
  ongoing,
});

describe('planReplicas (scaling and rolling updates)', () => {
  it('scales up and down within one version, stopping starting and idle replicas first', () => {
    expect(planReplicas([r('a', 'v1')], 3, 'v1')).toEqual({ start: 2, stop: [] });
    expect(
      planReplicas([r('a', 'v1', 'RUNNING', 3), r('b', 'v1', 'STARTING'), r('c', 'v1', 'RUNNING', 1)], 1, 'v1'),
    ).toEqual({ start: 0, stop: ['b', 'c'] });
  });

  it('replaces at most max(20%, 1) at a time, and stops an old replica only once a new one runs', () => {
    expect(maxReplacing(3)).toBe(1);
    expect(maxReplacing(10)).toBe(2);
    const old = ['a', 'b', 'c'].map((id) => r(id, 'v1'));
    expect(planReplicas(old, 3, 'v2')).toEqual({ start: 1, stop: [] });
    expect(planReplicas([...old, r('n1', 'v2', 'STARTING')], 3, 'v2')).toEqual({ start: 0, stop: [] });
    expect(planReplicas([...old, r('n1', 'v2')], 3, 'v2')).toEqual({ start: 1, stop: ['a'] });
  });

  it('simulated rollout of 10: never fewer than 10 serving, never more than 2 replacing', () => {
    let live: PlannedReplica[] = Array.from({ length: 10 }, (_, i) => r(`o${i}`, 'v1'));
    let n = 0;
    for (let step = 0; step < 50 && live.some((x) => x.version === 'v1'); step++) {
      live = live.map((x) => (x.state === 'STARTING' ? { ...x, state: 'RUNNING' } : x)); // last step's starts are up
      const plan = planReplicas(live, 10, 'v2');
      live = live.filter((x) => !plan.stop.includes(x.id));
      expect(live.filter((x) => x.state === 'RUNNING').length).toBeGreaterThanOrEqual(10);
      for (let i = 0; i < plan.start; i++) live.push(r(`n${n++}`, 'v2', 'STARTING'));
      expect(live.filter((x) => x.state === 'STARTING').length).toBeLessThanOrEqual(2);
    }
    expect(live.map((x) => x.version)).toEqual(Array(10).fill('v2'));
  });

  it('a rollout to zero replicas stops every old one', () => {
    expect(planReplicas([r('a', 'v1'), r('b', 'v1')], 0, 'v2')).toEqual({ start: 0, stop: ['a', 'b'] });
  });
});
