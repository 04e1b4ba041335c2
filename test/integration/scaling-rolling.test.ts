import { afterEach, describe, expect, it } from 'vitest';
import { DeploymentConfigError, startServe, type ServeInstance } from '@flotilla/core';
import { versioned } from '../fixtures/apps/scaling.js';
import { eventually } from '../helpers/eventually.js';

const deploymentOf = (instance: ServeInstance) => instance.status().applications[0]!.deployments[0]!;
const runningIds = (instance: ServeInstance) =>
  deploymentOf(instance)
    .replicas.filter((r) => r.state === 'RUNNING')
    .map((r) => r.id);

/** Keeps `concurrency` callers busy until stopped; counts successes and keeps every failure. */
function loadLoop(call: () => Promise<unknown>, concurrency: number) {
  let on = true;
  const stats = { ok: 0, errors: [] as unknown[] };
  const done = Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (on) {
        try {
          await call();
          stats.ok++;
        } catch (err) {
          stats.errors.push(err);
        }
      }
    }),
  );
  return {
    stats,
    stop: async () => {
      on = false;
      await done;
    },
  };
}

describe('rolling updates and reconfigure on a running instance', () => {
  let instance: ServeInstance | undefined;
  afterEach(async () => {
    await instance?.shutdown();
    instance = undefined;
  });

  it('rolls 5 replicas to a new version under load: one replaced at a time, no request dropped', {
    timeout: 300_000,
  }, async () => {
    instance = await startServe({
      applications: [{ name: 'v', app: versioned(1) }],
      checkpoint: false,
      startupTimeoutS: 240,
    });
    const before = new Set(runningIds(instance));
    expect(before.size).toBe(5);
    const starting = new Set<string>();
    const serving = new Set(before);
    let maxStarting = 0;
    let minServing = serving.size;
    instance.on('replica-state', (e) => {
      if (e.state === 'STARTING') starting.add(e.replicaId);
      else starting.delete(e.replicaId);
      if (e.state === 'RUNNING') serving.add(e.replicaId);
      if (e.state === 'STOPPING' || e.state === 'STOPPED') serving.delete(e.replicaId);
      maxStarting = Math.max(maxStarting, starting.size);
      minServing = Math.min(minServing, serving.size);
    });
    const handle = instance.getHandle('v');
    const load = loadLoop(() => handle.work(20), 8);
    await eventually(
      () => load.stats.ok,
      (n) => n > 20,
    );

    await instance.apply([{ name: 'v', app: versioned(2) }], { timeoutS: 240 });
    const after = runningIds(instance);
    await load.stop();

    expect(load.stats.errors).toEqual([]);
    expect(after).toHaveLength(5);
    expect(after.some((id) => before.has(id))).toBe(false);
    expect(maxStarting).toBe(1); // max(20% of 5, 1)
    expect(minServing).toBeGreaterThanOrEqual(5);
    const versions = await Promise.all(Array.from({ length: 20 }, () => handle.work(1)));
    expect(new Set(versions)).toEqual(new Set([2]));
    expect(deploymentOf(instance).status).toBe('HEALTHY');
  });

  it('a userConfig-only change reconfigures the same replicas (same ids and pids); a count change only scales', {
    timeout: 300_000,
  }, async () => {
    const app = (label: string, numReplicas = 2) =>
      versioned(1).options({ placement: 'process', numReplicas, userConfig: { label } });
    instance = await startServe({
      applications: [{ name: 'u', app: app('a') }],
      checkpoint: false,
      startupTimeoutS: 240,
    });
    const handle = instance.getHandle('u');
    const replicas = () =>
      deploymentOf(instance!)
        .replicas.map((r) => `${r.id}:${r.pid}`)
        .sort();
    const before = replicas();
    expect(before).toHaveLength(2);

    await instance.apply([{ name: 'u', app: app('b') }]);
    expect(replicas()).toEqual(before);
    const infos = await Promise.all(Array.from({ length: 10 }, () => handle.info()));
    expect(new Set(infos.map((i) => i.label))).toEqual(new Set(['b']));
    expect(new Set(infos.map((i) => i.pid)).size).toBe(2);

    await instance.apply([{ name: 'u', app: app('b', 3) }], { timeoutS: 240 });
    const now = replicas();
    expect(now).toHaveLength(3);
    expect(before.every((r) => now.includes(r))).toBe(true);
    expect(deploymentOf(instance).decisions!.at(-1)).toMatchObject({ from: 2, to: 3, reason: 'config' });

    // Invalid options are refused before anything changes.
    await expect(
      instance.apply([{ name: 'u', app: app('c').options({ maxOngoingRequests: 0 }) }]),
    ).rejects.toBeInstanceOf(DeploymentConfigError);
    expect(replicas()).toEqual(now);
    expect((await handle.info()).label).toBe('b');
  });

  it('a new version whose constructor fails leaves the previous version serving, and a fixed one rolls out', {
    timeout: 300_000,
  }, async () => {
    const app = (version: number) => versioned(version).options({ numReplicas: 2 });
    instance = await startServe({
      applications: [{ name: 'f', app: app(1) }],
      checkpoint: false,
      startupTimeoutS: 240,
    });
    const handle = instance.getHandle('f');
    const load = loadLoop(() => handle.work(5), 4);
    await expect(instance.apply([{ name: 'f', app: app(-1) }], { timeoutS: 240 })).rejects.toThrow(
      /build -1 is broken/,
    );
    expect(deploymentOf(instance)).toMatchObject({
      status: 'FAILED',
      message: expect.stringMatching(/rolling update failed, the previous version keeps serving/),
    });
    expect(await handle.work(1)).toBe(1);

    await instance.apply([{ name: 'f', app: app(3) }], { timeoutS: 240 });
    await load.stop();
    expect(load.stats.errors).toEqual([]);
    expect(new Set(await Promise.all(Array.from({ length: 10 }, () => handle.work(1))))).toEqual(new Set([3]));
  });
});
