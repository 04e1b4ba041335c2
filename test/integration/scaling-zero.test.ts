import { afterEach, describe, expect, it } from 'vitest';
import {
  FlotillaMetrics,
  defaultAutoscalingPolicy,
  startServe,
  type AutoscalingContext,
  type ServeInstance,
} from '@flotilla/core';
import { renderStatus } from '../../packages/core/src/cli/status-table.js';
import { elastic } from '../fixtures/apps/scaling.js';
import { eventually } from '../helpers/eventually.js';

const deploymentOf = (instance: ServeInstance) => instance.status().applications[0]!.deployments[0]!;
const running = (instance: ServeInstance) =>
  deploymentOf(instance).replicas.filter((r) => r.state === 'RUNNING').length;

describe('autoscaling with real threads: scale to zero and back', () => {
  let instance: ServeInstance | undefined;
  afterEach(async () => {
    await instance?.shutdown();
    instance = undefined;
  });

  it('queues requests at the caller while no replica exists, starts one at once, serves them, and goes back to zero', {
    timeout: 240_000,
  }, async () => {
    instance = await startServe({ applications: [{ name: 'z', app: elastic() }], checkpoint: false });
    const metrics = new FlotillaMetrics({ status: () => instance!.status(), processMetrics: false });
    metrics.observeRuntime(instance.events);
    expect(deploymentOf(instance)).toMatchObject({ status: 'HEALTHY', targetReplicas: 0, replicas: [] });

    const handle = instance.getHandle('z');
    const first = await Promise.all([handle.work(10), handle.work(10)]);
    expect(first.every((id) => typeof id === 'string')).toBe(true);
    const decisions = deploymentOf(instance).decisions!;
    expect(decisions[0]).toMatchObject({ from: 0, reason: 'scale-from-zero' });
    expect(decisions[0]!.to).toBeGreaterThanOrEqual(1);

    // Load over maxOngoingRequests 1 per replica, kept up until it has scaled to maxReplicas (3) ...
    let loaded = true;
    const served = new Set<string>();
    const load = Promise.all(
      Array.from({ length: 6 }, async () => {
        while (loaded) served.add(await handle.work(100));
      }),
    );
    await eventually(
      () => running(instance!),
      (n) => n === 3,
      120_000,
    );
    loaded = false;
    await load;
    expect(served.size).toBeGreaterThan(1);
    // ... and after downscaleDelayS without load, back to zero.
    await eventually(
      () => deploymentOf(instance!),
      (d) => d.targetReplicas === 0 && d.replicas.length === 0,
      60_000,
    );
    const reasons = deploymentOf(instance).decisions!.map((d) => d.reason);
    expect(reasons).toContain('scale-up');
    expect(reasons[reasons.length - 1]).toBe('scale-down');

    // Served again from zero.
    expect(typeof (await handle.work(1))).toBe('string');
    const { body } = await metrics.scrape();
    expect(body).toMatch(
      /flotilla_scaling_decisions_total\{app="z",deployment="Elastic",reason="scale-from-zero"\} [2-9]/,
    );
    expect(body).toMatch(/flotilla_scaling_decisions_total\{app="z",deployment="Elastic",reason="scale-down"\} [1-9]/);
    expect(body).toMatch(/flotilla_deployment_target_replicas\{app="z",deployment="Elastic"\} [1-3]/);
    expect(body).toMatch(/flotilla_deployment_current_replicas\{app="z",deployment="Elastic"\} \d/);
    expect(renderStatus(instance.status())).toMatch(/scaling decisions[\s\S]*Elastic .*0 → \d+\s+scale-from-zero/);
  });

  it("replicas' autoscalingMetrics() reach the policy (summed over replicas, averaged over the window)", {
    timeout: 240_000,
  }, async () => {
    const seen: AutoscalingContext['metrics'][] = [];
    instance = await startServe({
      applications: [{ name: 'm', app: elastic().options({ autoscaling: { minReplicas: 2, initialReplicas: 2 } }) }],
      checkpoint: false,
      startupTimeoutS: 200,
      autoscalingPolicy: (ctx, state) => {
        seen.push(ctx.metrics);
        return defaultAutoscalingPolicy(ctx, state);
      },
    });
    // Each replica reports kvCacheUsage 0.25: two replicas sum to 0.5 once both reports fill the window.
    const last = await eventually(
      () => seen.at(-1),
      (m) => m !== undefined && m.reporting === 2 && Math.abs((m.custom.kvCacheUsage ?? 0) - 0.5) < 1e-9,
    );
    expect(last!.custom.waitingRequests).toBe(0);
  });
});
