/**
 * LLM-aware autoscaling running end to end: examples/llm-autoscaling.ts through `serve run` (a child
 * process) on stories260K with room for 2 sequences and a 1 MiB KV cache, so that 8 concurrent long
 * requests leave requests waiting in the engine and its KV cache nearly full. The 'llm' policy (ongoing
 * requests alone would not scale: targetOngoingRequests is 64) scales the deployment to 2 replicas on
 * that pressure, and back to 1 once it is idle. Waits are for status conditions, with generous deadlines.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DeploymentStatusInfo, ServeStatus } from '@flotilla/core';
import { serveRun, type ServeRun } from '../fixtures/apps/deploy-llm-harness.js';
import { describeWithModels, models } from '../helpers/models.js';

let server: ServeRun;

async function deploymentStatus(): Promise<DeploymentStatusInfo> {
  const status = (await (await fetch(`${server.url}/-/status`)).json()) as ServeStatus;
  return status.applications[0]!.deployments[0]!;
}

const running = (d: DeploymentStatusInfo) => d.replicas.filter((r) => r.state === 'RUNNING').length;

/** Polls the deployment's status until `ok` holds; fails with the last status after `deadlineMs`. */
async function waitFor(ok: (d: DeploymentStatusInfo) => boolean, deadlineMs: number): Promise<DeploymentStatusInfo> {
  const end = Date.now() + deadlineMs;
  let d = await deploymentStatus();
  while (!ok(d)) {
    if (Date.now() > end)
      throw new Error(`status condition not met in time; last status:\n${JSON.stringify(d, null, 2)}`);
    await new Promise((r) => setTimeout(r, 250));
    d = await deploymentStatus();
  }
  return d;
}

describeWithModels('LLM-aware autoscaling (examples/llm-autoscaling.ts, stories260K)', () => {
  beforeAll(async () => {
    server = await serveRun([
      'examples/llm-autoscaling.ts:app',
      `model=${models.stories260K}`,
      'max_num_seqs=2',
      'kv_cache_mb=1',
      'downscale_delay_s=3',
    ]);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('engine queue and KV pressure scale a real LLMServer to 2 replicas, and idleness back to 1', async () => {
    const start = await deploymentStatus();
    expect(start.targetReplicas).toBe(1);
    expect(running(start)).toBe(1);

    // Eight clients, each sending long completions back to back until the deployment has scaled.
    let loading = true;
    let completed = 0;
    const failures: string[] = [];
    const client = async () => {
      while (loading) {
        const res = await fetch(`${server.url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 400, ignore_eos: true, temperature: 0.8 }),
        });
        if (res.status === 200) completed++;
        else failures.push(`${res.status} ${await res.text()}`);
        await res.arrayBuffer().catch(() => undefined);
      }
    };
    const clients = Array.from({ length: 8 }, client);
    let scaled: DeploymentStatusInfo;
    try {
      scaled = await waitFor((d) => d.targetReplicas === 2 && running(d) === 2, 150_000);
    } finally {
      loading = false;
      await Promise.all(clients);
    }
    expect(failures).toEqual([]);
    expect(completed).toBeGreaterThan(0);
    const up = scaled.decisions?.find((x) => x.from === 1 && x.to === 2);
    expect(up, JSON.stringify(scaled.decisions)).toBeDefined();
    // The decision came from the engines' pressure, not from ongoing requests (64 per replica is the target).
    const m = /([\d.]+) waiting in engines, KV (\d+)%/.exec(up!.message);
    expect(m, up!.message).not.toBeNull();
    const [waiting, kv] = [Number(m![1]), Number(m![2])];
    expect(waiting > 2 || kv > 90, up!.message).toBe(true);

    // Idle: the queues drain and KV frees, so the policy lets a replica go.
    const idle = await waitFor((d) => d.targetReplicas === 1 && running(d) === 1, 150_000);
    const down = idle.decisions?.find((x) => x.from === 2 && x.to === 1);
    expect(down, JSON.stringify(idle.decisions)).toBeDefined();
    expect(down!.reason).toBe('scale-down');
  }, 360_000);
});
