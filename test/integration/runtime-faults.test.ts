import { afterEach, describe, expect, it } from 'vitest';
import { ActorDiedError, BackPressureError, DeploymentConfigError, ServeInstance, startServe } from '@flotilla/core';
import { broken, fanout, flaky, fragile, narrow } from '../fixtures/apps/faults.js';

import { eventually } from '../helpers/eventually.js';

const running = (instance: ServeInstance) =>
  instance.status().applications[0]!.deployments[0]!.replicas.filter((r) => r.state === 'RUNNING');

describe('faults', () => {
  let instance: ServeInstance | undefined;
  afterEach(async () => {
    await instance?.shutdown();
    instance = undefined;
  });

  it('a replica process killed mid-request is replaced and later requests succeed', async () => {
    instance = await startServe({ applications: [{ name: 'f', app: fragile(1) }] });
    const handle = instance.getHandle('f');
    const pid = (await handle.pid()) as number;
    const inFlight = handle.slow(10_000);
    await new Promise((r) => setTimeout(r, 200));
    process.kill(pid, 'SIGKILL');
    // Accepted before the crash: not retried (it may have had effects), fails clearly instead of hanging.
    await expect(inFlight).rejects.toBeInstanceOf(ActorDiedError);
    const next = (await handle.pid()) as number;
    expect(next).not.toBe(pid);
    await eventually(
      () => running(instance!).map((r) => r.pid),
      (pids) => pids.length === 1 && pids[0] === next,
    );
    expect(await handle.slow(10)).toBe(next);
  });

  it('a request sent to a replica that died before accepting it is retried on another', async () => {
    instance = await startServe({ applications: [{ name: 'f', app: fragile(2) }] });
    const handle = instance.getHandle('f');
    const pids = running(instance).map((r) => r.pid!);
    expect(pids).toHaveLength(2);
    // The router still lists the dead replica until the controller notices: some of these go to it first.
    process.kill(pids[0]!, 'SIGKILL');
    const results = await Promise.all(Array.from({ length: 20 }, () => handle.pid()));
    expect(results.every((p) => p !== pids[0])).toBe(true);
    expect(results).toContain(pids[1]);
  });

  it('back-pressure: over maxQueuedRequests the caller gets BackPressureError with retryAfterS', async () => {
    instance = await startServe({ applications: [{ name: 'n', app: narrow() }] });
    const handle = instance.getHandle('n');
    const first = handle.work(500);
    const second = handle.work(10);
    const third = handle.work(10);
    await expect(third).rejects.toBeInstanceOf(BackPressureError);
    await third.catch((err: BackPressureError) => {
      expect(err.httpStatus).toBe(503);
      expect(err.data?.retryAfterS).toBeGreaterThanOrEqual(1);
    });
    expect(await Promise.all([first, second])).toEqual(['done', 'done']);
  });

  it('maxOngoingRequests holds at the replica across callers (the replica refuses, routers retry)', async () => {
    instance = await startServe({ applications: [{ name: 'm', app: fanout() }] });
    const viaFanout = instance.getHandle('m');
    const direct = instance.getHandle('m', 'Single');
    const results = await Promise.all([
      ...Array.from({ length: 4 }, () => viaFanout.work(50)),
      ...Array.from({ length: 4 }, () => direct.work(50)),
    ]);
    expect(results).toEqual(Array(8).fill('ok'));
    expect(await direct.peak()).toBe(1);
  });

  it('a constructor that keeps failing marks the deployment FAILED with the cause', async () => {
    const failing = new ServeInstance({ applications: [{ name: 'b', app: broken() }] });
    try {
      const err = await failing.ready(30).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DeploymentConfigError);
      expect((err as Error).message).toMatch(/Broken.*no model file at \/nope\/model\.bin/s);
      const dep = failing.status().applications[0]!.deployments[0]!;
      expect(dep.status).toBe('FAILED');
      expect(dep.message).toMatch(/failed to start 2 times.*constructor threw.*no model file/s);
      await expect(failing.getHandle('b').remote('anything', [])).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    } finally {
      await failing.shutdown();
    }
    await expect(
      startServe({ applications: [{ name: 'b', app: broken().options({ maxConstructorRetries: 1 }) }] }),
    ).rejects.toThrow(/no model file/);
  });

  it('a replica failing its health check is replaced', async () => {
    instance = await startServe({ applications: [{ name: 'h', app: flaky() }] });
    const handle = instance.getHandle('h');
    const before = running(instance)[0]!.id;
    await handle.breakHealth();
    await eventually(
      () => running(instance!).map((r) => r.id),
      (ids) => ids.length === 1 && ids[0] !== before,
    );
    expect(await handle.id()).toBe('healthy');
  });
});
