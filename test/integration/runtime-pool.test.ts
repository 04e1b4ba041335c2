import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadRequestError, RequestCancelledError, startServe, type ServeInstance } from '@flotilla/core';
import { hasherApp, processApp, spinnerApp } from '../fixtures/apps/task-pool.js';
import { eventually } from '../helpers/eventually.js';

describe('stateless task deployments on a piscina pool', () => {
  let instance: ServeInstance;
  beforeAll(async () => {
    instance = await startServe({
      applications: [
        { name: 'hash', routePrefix: '/hash', app: hasherApp },
        { name: 'spin', routePrefix: '/spin', app: spinnerApp },
        { name: 'proc', routePrefix: '/proc', app: processApp },
      ],
      checkpoint: false,
    });
  }, 120_000);
  afterAll(async () => {
    await instance?.shutdown();
  });

  it('runs concurrent calls of one replica at the same time, each on its own pool thread', async () => {
    const handle = instance.getHandle('hash');
    const shared = new SharedArrayBuffer(8);
    const results = (await Promise.all([handle.barrier(shared, 2), handle.barrier(shared, 2)])) as {
      threadId: number;
      sawAll: boolean;
    }[];
    expect(results.map((r) => r.sawAll)).toEqual([true, true]);
    expect(new Set(results.map((r) => r.threadId)).size).toBe(2);
    expect(instance.status().applications.find((a) => a.name === 'hash')!.deployments[0]!.replicas).toHaveLength(1);
  }, 180_000);

  it('builds the class in each pool thread with the bound arguments, and calls see their request context', async () => {
    const me = await instance.getHandle('hash').options({ requestId: 'pool-req-1' }).whoAmI();
    expect(me).toMatchObject({ salt: 'pepper', requestId: 'pool-req-1', pid: process.pid });
  });

  it('rebuilds errors thrown in a pool thread as the same class', async () => {
    const err = await instance
      .getHandle('hash')
      .refuse('pepper')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as Error).message).toMatch(/no pepper here/);
  });

  it('cancelling a running call stops its pool thread, and the pool goes on with a new one', async () => {
    const handle = instance.getHandle('spin');
    const before = await handle.whoAmI();
    const shared = new SharedArrayBuffer(8);
    const ac = new AbortController();
    const call = handle.remote('spin', [shared], { signal: ac.signal });
    await eventually(
      () => Atomics.load(new Int32Array(shared), 0),
      (v) => v === 1,
    );
    ac.abort();
    await expect(call).rejects.toBeInstanceOf(RequestCancelledError);
    // The pool's only thread was spinning forever: an answer here means it was stopped and replaced.
    const after = await handle.whoAmI();
    expect(after).not.toBe(before);
  }, 180_000);

  it('works the same in a process replica', async () => {
    const me = (await instance.getHandle('proc').whoAmI()) as { pid: number; salt: string };
    expect(me.salt).toBe('salt');
    expect(me.pid).not.toBe(process.pid);
  });
});
