import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, type ServeInstance } from '@flotilla/core';
import { app } from '../fixtures/apps/composition.js';

describe('composition across a thread replica and a process replica', () => {
  let instance: ServeInstance;
  beforeAll(async () => {
    instance = await startServe({
      applications: [{ name: 'calc', routePrefix: '/calc', app: app({ offset: '3' }) }],
      // Overrides the bind-time userConfig, as `serve run --config` does.
      config: {
        applications: [{ name: 'calc', deployments: [{ name: 'Doubler', userConfig: { label: 'from-config' } }] }],
      },
    });
  });
  afterAll(async () => {
    await instance?.shutdown();
  });

  it('calls through a handle from a thread replica into a process replica', async () => {
    const handle = instance.getHandle('calc');
    const result = await handle.compute(5);
    expect(result.value).toBe(13);
    expect(result.adderPid).toBe(process.pid);
    expect(result.adderMainThread).toBe(false);
    expect(result.doublerPid).not.toBe(process.pid);
  });

  it('reaches a non-ingress deployment directly, with remote() and typed sugar', async () => {
    const doubler = instance.getHandle('calc', 'Doubler');
    expect(await doubler.remote('double', [4])).toMatchObject({ value: 8, mainThread: true, replica: 'Doubler' });
    expect(await doubler.double(1)).toMatchObject({ label: 'from-config' });
  });

  it('streams through the thread replica from the process replica', async () => {
    const items: unknown[] = [];
    for await (const x of instance.getHandle('calc').stream.scaled(5)) items.push(x);
    expect(items).toEqual([0, 10, 20, 30, 40]);
  });

  it('reports routes with method kinds, status and stats', () => {
    expect(instance.routes()).toEqual([
      {
        app: 'calc',
        routePrefix: '/calc',
        ingress: 'Adder',
        deployments: ['Adder', 'Doubler'],
        methods: { compute: 'unary', scaled: 'stream' },
        rawHttp: false,
      },
    ]);
    const status = instance.status();
    expect(status.applications[0]!.status).toBe('RUNNING');
    const doubler = status.applications[0]!.deployments.find((d) => d.name === 'Doubler')!;
    expect(doubler.replicas[0]).toMatchObject({ state: 'RUNNING', placement: 'process' });
    expect(
      instance
        .stats()
        .map((s) => s.deployment)
        .sort(),
    ).toEqual(['Adder', 'Doubler']);
  });

  it('rejects unknown methods and deployments with NotFoundError', async () => {
    await expect(instance.getHandle('calc').remote('nope', [])).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(() => instance.getHandle('calc', 'Nope')).toThrow(/no deployment 'Nope'/);
    expect(() => instance.getHandle('other')).toThrow(/no application 'other'/);
  });
});
