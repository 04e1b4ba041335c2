/**
 * The replica's destructor: a deployment's `dispose()` (or `[Symbol.asyncDispose]()`, which wins) runs
 * once when its replica stops, by scale-down or serve shutdown, in thread and process replicas; it is
 * not callable through handles.
 */
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NotFoundError, startServe } from '@flotilla/core';
import { AsyncDisposable, Disposable } from '../fixtures/apps/disposable.js';
import { eventually } from '../helpers/ingress.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'flotilla-dispose-'));
const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

describe('replica dispose()', () => {
  it('runs once per replica: on scale-down for the replica stopped, on shutdown for the rest', async () => {
    const file = path.join(tmp, 'thread.txt');
    const instance = await startServe({ applications: [{ name: 'd', app: Disposable.bind(file) }] });
    const handle = instance.getHandle('d') as unknown as { ping(): Promise<string>; dispose(): Promise<void> };
    expect(await handle.ping()).toMatch(/\S/);
    await expect(handle.dispose()).rejects.toBeInstanceOf(NotFoundError);
    expect(lines(file)).toEqual([]);
    const ids = instance.status().applications[0]!.deployments[0]!.replicas.map((r) => r.id);
    expect(ids).toHaveLength(2);

    await instance.apply([{ name: 'd', app: Disposable.bind(file).options({ numReplicas: 1 }) }], { timeoutS: 60 });
    await eventually(() => lines(file).length === 1, 10_000, 'the scaled-down replica disposed');
    const survivor = instance
      .status()
      .applications[0]!.deployments[0]!.replicas.filter((r) => r.state === 'RUNNING')
      .map((r) => r.id);
    expect(survivor).toHaveLength(1);
    expect(lines(file)).toEqual([`dispose ${ids.find((id) => id !== survivor[0])}`]);

    await instance.shutdown();
    expect(lines(file).sort()).toEqual(ids.map((id) => `dispose ${id}`).sort());
  }, 90_000);

  it('prefers [Symbol.asyncDispose]() and awaits it in a process replica before the kill', async () => {
    const file = path.join(tmp, 'process.txt');
    const instance = await startServe({ applications: [{ name: 'p', app: AsyncDisposable.bind(file) }] });
    expect(await instance.getHandle('p').ping()).toBe('pong');
    const id = instance.status().applications[0]!.deployments[0]!.replicas[0]!.id;
    await instance.shutdown();
    expect(lines(file)).toEqual([`asyncDispose ${id}`]);
  }, 60_000);
});
