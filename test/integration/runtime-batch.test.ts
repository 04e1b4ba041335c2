import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, UserCodeError, type BatchEvent, type ServeInstance } from '@flotilla/core';
import { app } from '../fixtures/apps/batching.js';

describe('@batch', () => {
  let instance: ServeInstance;
  const events: BatchEvent[] = [];
  beforeAll(async () => {
    instance = await startServe({ applications: [{ name: 'emb', app: app() }] });
    instance.on('batch', (e) => events.push(e));
  });
  afterAll(async () => {
    await instance?.shutdown();
  });

  it('groups concurrent calls into one array and answers each caller with its own result', async () => {
    const handle = instance.getHandle('emb');
    const inputs = ['a', 'bb', 'ccc', 'dddd', 'eeeee', 'ffffff', 'ggggggg', 'hhhhhhhh'];
    const results = await Promise.all(inputs.map((s) => handle.remote('embed', [s])));
    expect(results).toEqual(inputs.map((input) => ({ input, length: input.length, batchSize: 8 })));
    expect(await handle.batchSizes()).toEqual([8]);
  });

  it('flushes a partial batch after batchWaitTimeoutMs', async () => {
    const handle = instance.getHandle('emb');
    const results = await Promise.all(['x', 'y', 'z'].map((s) => handle.remote('embed', [s])));
    expect(results.map((r) => (r as { batchSize: number }).batchSize)).toEqual([3, 3, 3]);
  });

  it('fails every call of a batch whose method throws, and only that batch', async () => {
    const handle = instance.getHandle('emb');
    const settled = await Promise.allSettled([1, 13, 3, 4, 5].map((n) => handle.remote('failing', [n])));
    expect(settled.slice(0, 4).map((s) => s.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    expect((settled[1] as PromiseRejectedResult).reason).toBeInstanceOf(UserCodeError);
    expect((settled[1] as PromiseRejectedResult).reason.message).toMatch(/unlucky batch/);
    expect(settled[4]).toEqual({ status: 'fulfilled', value: 5 });
  });

  it('reports batch sizes to the controller process as events', async () => {
    const deadline = Date.now() + 10_000;
    while (!events.some((e) => e.method === 'embed' && e.size === 8) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(events).toContainEqual({ app: 'emb', deployment: 'Embedder', method: 'embed', size: 8 });
  });
});
