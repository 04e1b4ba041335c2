import { describe, expect, it } from 'vitest';
import {
  defaultAutoscalingPolicy,
  llmAutoscalingPolicy,
  rayDesiredReplicas,
} from '../../packages/core/src/controller/autoscaling-policy.js';
import type {
  AutoscalingContext,
  AutoscalingPolicy,
  AutoscalingState,
} from '../../packages/core/src/contract/autoscaling.js';
import type { ResolvedAutoscaling } from '../../packages/core/src/contract/autoscaling.js';

const config: ResolvedAutoscaling = {
  minReplicas: 1,
  maxReplicas: 5,
  initialReplicas: 1,
  targetOngoingRequests: 2,
  upscaleDelayS: 2,
  downscaleDelayS: 10,
  metricsIntervalS: 1,
  lookBackPeriodS: 5,
  upscalingFactor: 1,
  downscalingFactor: 1,
};

interface Step {
  t: number;
  total: number;
  queuedNow?: number;
  custom?: Record<string, number>;
  reporting?: number;
}

function ctx(cfg: ResolvedAutoscaling, current: number, s: Step): AutoscalingContext {
  return {
    config: cfg,
    currentReplicas: current,
    runningReplicas: current,
    totalRequests: s.total,
    queuedNow: s.queuedNow ?? 0,
    metrics: { ongoing: s.total, queued: 0, custom: s.custom ?? {}, reporting: s.reporting ?? current },
    nowMs: s.t * 1000,
  };
}

/** Replays a load trace through a policy, feeding back its replicas and state; returns the replica counts. */
function run(steps: Step[], current = 1, cfg = config, policy: AutoscalingPolicy = defaultAutoscalingPolicy) {
  let state: AutoscalingState = {};
  return steps.map((s) => {
    const d = policy(ctx(cfg, current, s), state);
    state = d.state;
    current = d.replicas;
    return current;
  });
}

describe('defaultAutoscalingPolicy (Ray Serve formula)', () => {
  it('scales up to ceil(total / target) only after the upscale delay', () => {
    expect(
      run([
        { t: 0, total: 7 },
        { t: 1, total: 7 },
        { t: 2, total: 7 },
      ]),
    ).toEqual([1, 1, 4]);
  });

  it('a spike shorter than the upscale delay does nothing; the delay restarts after it', () => {
    expect(
      run([
        { t: 0, total: 9 },
        { t: 1, total: 9 },
        { t: 1.5, total: 2 },
        { t: 2.5, total: 9 },
        { t: 4, total: 9 },
        { t: 4.5, total: 9 },
      ]),
    ).toEqual([1, 1, 1, 1, 1, 5]);
  });

  it('clamps to [minReplicas, maxReplicas]', () => {
    expect(
      run([
        { t: 0, total: 100 },
        { t: 2, total: 100 },
      ]),
    ).toEqual([1, 5]);
    expect(
      run(
        [
          { t: 0, total: 0 },
          { t: 20, total: 0 },
        ],
        3,
      ),
    ).toEqual([3, 1]);
  });

  it('brings a target outside new bounds back at once, without waiting for a delay', () => {
    const d = defaultAutoscalingPolicy(ctx({ ...config, maxReplicas: 3 }, 5, { t: 0, total: 10 }), {});
    expect(d).toMatchObject({ replicas: 3, reason: 'bounds' });
  });

  it('drains: scales down after the downscale delay of low load', () => {
    expect(
      run(
        [
          { t: 0, total: 2 },
          { t: 5, total: 2 },
          { t: 10, total: 2 },
        ],
        4,
      ),
    ).toEqual([4, 4, 1]);
  });

  it('damps oscillation: a dip shorter than the downscale delay does not scale down', () => {
    expect(
      run(
        [
          { t: 0, total: 2 },
          { t: 5, total: 8 },
          { t: 9, total: 2 },
          { t: 12, total: 2 },
        ],
        4,
      ),
    ).toEqual([4, 4, 4, 4]);
  });

  it('scales from zero at once on requests waiting now, before the averaged load shows them', () => {
    const zero = { ...config, minReplicas: 0 };
    const d = defaultAutoscalingPolicy(ctx(zero, 0, { t: 0, total: 0, queuedNow: 3 }), {});
    expect(d).toMatchObject({ replicas: 2, reason: 'scale-from-zero' });
    expect(defaultAutoscalingPolicy(ctx(zero, 0, { t: 0, total: 0 }), {})).toMatchObject({
      replicas: 0,
      reason: 'at-target',
    });
  });

  it('scales to zero after the downscale delay when minReplicas is 0', () => {
    expect(
      run(
        [
          { t: 0, total: 0 },
          { t: 10, total: 0 },
        ],
        2,
        { ...config, minReplicas: 0 },
      ),
    ).toEqual([2, 0]);
  });

  it('smooths with upscaling and downscaling factors', () => {
    // error ratio 16 / (2 × 2) = 4; factor 0.5 → 1 + 3 × 0.5 = 2.5 → ceil(2 × 2.5) = 5
    expect(rayDesiredReplicas({ ...config, maxReplicas: 100, upscalingFactor: 0.5 }, 2, 16)).toBe(5);
    expect(rayDesiredReplicas({ ...config, maxReplicas: 100 }, 2, 16)).toBe(8);
    // error ratio 0 with factor 0.5 → halve instead of dropping to the floor
    expect(rayDesiredReplicas({ ...config, downscalingFactor: 0.5 }, 8, 0)).toBe(4);
  });

  it('stays put at target', () => {
    expect(
      run(
        [
          { t: 0, total: 4 },
          { t: 100, total: 4 },
        ],
        2,
      ),
    ).toEqual([2, 2]);
  });
});

describe('llmAutoscalingPolicy (engine queue and KV-cache use)', () => {
  const llm = llmAutoscalingPolicy({ maxWaitingPerReplica: 2, kvHighWatermark: 0.9, kvLowWatermark: 0.5 });
  const cfg = { ...config, maxReplicas: 10 };

  it('scales up on a long engine waiting queue although ongoing is under target', () => {
    const steps = [
      { t: 0, total: 2, custom: { waitingRequests: 12 } },
      { t: 2, total: 2, custom: { waitingRequests: 12 } },
    ];
    expect(run(steps, 2, cfg, llm)).toEqual([2, 6]);
    expect(run(steps, 2, cfg)).toEqual([2, 2]);
  });

  it('adds one replica when mean KV-cache use is over the high watermark', () => {
    const full = { waitingRequests: 0, kvCacheUsage: 1.9 }; // two replicas at 95 %
    expect(
      run(
        [
          { t: 0, total: 4, custom: full },
          { t: 2, total: 4, custom: full },
        ],
        2,
        cfg,
        llm,
      ),
    ).toEqual([2, 3]);
  });

  it('does not scale down while KV use is high or requests wait, even with few ongoing', () => {
    const busy = { kvCacheUsage: 1.2, waitingRequests: 0 }; // 3 replicas at 40 % … 60 % → mean 40 %
    const held = { kvCacheUsage: 2.1, waitingRequests: 0 }; // mean 70 %
    expect(
      run(
        [
          { t: 0, total: 0, custom: held },
          { t: 20, total: 0, custom: held },
        ],
        3,
        cfg,
        llm,
      ),
    ).toEqual([3, 3]);
    expect(
      run(
        [
          { t: 0, total: 0, custom: busy },
          { t: 20, total: 0, custom: busy },
        ],
        3,
        cfg,
        llm,
      ),
    ).toEqual([3, 1]);
  });

  it('still scales from zero at once', () => {
    const d = llm(ctx({ ...cfg, minReplicas: 0 }, 0, { t: 0, total: 0, queuedNow: 1, reporting: 0 }), {});
    expect(d).toMatchObject({ replicas: 1, reason: 'scale-from-zero' });
  });
});
