import { describe, expect, it } from 'vitest';
import { startServe, UnavailableError } from '@flotilla/core';
import { app } from '../fixtures/apps/draining.js';

describe('graceful shutdown', () => {
  it('finishes requests in flight (including their nested calls) and refuses new ones', async () => {
    const instance = await startServe({ applications: [{ name: 'd', app: app() }] });
    const front = instance.getHandle('d');
    const worker = instance.getHandle('d', 'Worker');
    const inFlight = [front.work(800), front.work(600), worker.work(700)];
    const stream = (async () => {
      const items: unknown[] = [];
      for await (const x of worker.stream.steps(4, 150)) items.push(x);
      return items;
    })();
    await new Promise((r) => setTimeout(r, 100));
    const stopping = instance.shutdown();
    expect(instance.draining).toBe(true);
    await expect(front.work(10)).rejects.toBeInstanceOf(UnavailableError);
    expect(await Promise.all(inFlight)).toEqual(['front:done', 'front:done', 'done']);
    expect(await stream).toEqual([0, 1, 2, 3]);
    await stopping;
    const states = instance.status().applications[0]!.deployments.flatMap((d) => d.replicas.map((r) => r.state));
    expect(states.every((s) => s === 'STOPPED' || s === 'STOPPING')).toBe(true);
  });

  it('Symbol.asyncDispose shuts the instance down', async () => {
    let pid: number | undefined;
    {
      await using instance = await startServe({ applications: [{ name: 'd', app: app() }] });
      pid = instance.status().applications[0]!.deployments.find((d) => d.name === 'Worker')!.replicas[0]!.pid;
      expect(await instance.getHandle('d').work(10)).toBe('front:done');
    }
    expect(() => process.kill(pid!, 0)).toThrow();
  });
});
