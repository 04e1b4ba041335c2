import { describe, expect, it } from 'vitest';
import { ModelCache } from '../../packages/core/src/replica/model-cache.js';

/** A loader whose loads the test settles, and a log of disposals. */
function fakeLoader() {
  const pending = new Map<string, { resolve(m: string): void; reject(e: Error): void }[]>();
  const disposed: string[] = [];
  let loads = 0;
  const load = (id: string) =>
    new Promise<string>((resolve, reject) => {
      loads++;
      const list = pending.get(id) ?? [];
      list.push({ resolve, reject });
      pending.set(id, list);
    });
  const finish = (id: string, err?: Error) => {
    for (const p of pending.get(id) ?? []) err ? p.reject(err) : p.resolve(`model:${id}`);
    pending.delete(id);
  };
  return { load, finish, disposed, loads: () => loads };
}

const instant = (capacity: number, disposed: string[] = []) =>
  new ModelCache<string>({
    capacity,
    load: async (id) => `model:${id}`,
    dispose: (m, id) => void disposed.push(id),
  });

describe('ModelCache (per-replica LRU of multiplexed models)', () => {
  it('loads on a miss, serves repeats without loading, evicts the least recently used beyond capacity', async () => {
    const disposed: string[] = [];
    const cache = instant(2, disposed);
    for (const id of ['a', 'b', 'a', 'c']) (await cache.acquire(id)).release();
    // a was used after b, so b goes when c arrives.
    expect(cache.ids()).toEqual(['c', 'a']);
    expect(disposed).toEqual(['b']);
    expect(cache.counters).toEqual({ loads: 3, hits: 1, loadFailures: 0, evictions: 1 });
  });

  it('never evicts a model a running request holds: goes over capacity, then shrinks when it is released', async () => {
    const disposed: string[] = [];
    const cache = instant(1, disposed);
    const a = await cache.acquire('a');
    const b = await cache.acquire('b');
    expect(cache.ids().sort()).toEqual(['a', 'b']);
    expect(disposed).toEqual([]);
    expect(a.model).toBe('model:a');
    b.release();
    // a is the least recently used but still pinned, so the unpinned b is what goes.
    expect(disposed).toEqual(['b']);
    a.release();
    expect(cache.ids()).toEqual(['a']);
    a.release(); // idempotent
    expect(cache.pinsOf('a')).toBe(0);
  });

  it('evicts once the new model has loaded, and nothing when the load fails (bad ids cannot empty the cache)', async () => {
    const f = fakeLoader();
    const order: string[] = [];
    const cache = new ModelCache<string>({
      capacity: 1,
      load: (id) => (order.push(`load ${id}`), f.load(id)),
      dispose: (_m, id) => void order.push(`dispose ${id}`),
    });
    const pa = cache.acquire('a');
    f.finish('a');
    (await pa).release();
    const bad = cache.acquire('bad');
    f.finish('bad', new Error('unknown model'));
    await expect(bad).rejects.toThrow('unknown model');
    expect(cache.ids()).toEqual(['a']);
    const pb = cache.acquire('b');
    expect(order).toEqual(['load a', 'load bad', 'load b']);
    f.finish('b');
    (await pb).release();
    expect(order).toEqual(['load a', 'load bad', 'load b', 'dispose a']);
    expect(cache.ids()).toEqual(['b']);
  });

  it('shares one load among concurrent misses of an id', async () => {
    const f = fakeLoader();
    const cache = new ModelCache<string>({ capacity: 2, load: f.load });
    const all = [cache.acquire('x'), cache.acquire('x'), cache.acquire('x')];
    expect(f.loads()).toBe(1);
    expect(cache.pinsOf('x')).toBe(3);
    f.finish('x');
    const leases = await Promise.all(all);
    expect(leases.map((l) => l.model)).toEqual(['model:x', 'model:x', 'model:x']);
    expect(cache.counters.hits).toBe(2);
  });

  it('a failed load fails every waiter, caches nothing, and the next request loads again', async () => {
    const f = fakeLoader();
    const cache = new ModelCache<string>({ capacity: 2, load: f.load });
    const p1 = cache.acquire('bad');
    const p2 = cache.acquire('bad');
    f.finish('bad', new Error('no such file'));
    await expect(p1).rejects.toThrow('no such file');
    await expect(p2).rejects.toThrow('no such file');
    expect(cache.has('bad')).toBe(false);
    expect(cache.counters.loadFailures).toBe(1);
    const p3 = cache.acquire('bad');
    expect(f.loads()).toBe(2);
    f.finish('bad');
    expect((await p3).model).toBe('model:bad');
  });

  it('a loading model is not evicted to make room for another', async () => {
    const f = fakeLoader();
    const cache = new ModelCache<string>({ capacity: 1, load: f.load });
    const pa = cache.acquire('a');
    const pb = cache.acquire('b');
    f.finish('b');
    f.finish('a');
    const [a, b] = await Promise.all([pa, pb]);
    expect(a.model).toBe('model:a');
    b.release();
    expect(cache.ids()).toEqual(['a']);
  });

  it('reports a dispose that throws and carries on; clear() disposes unpinned models', async () => {
    const errors: string[] = [];
    const disposed: string[] = [];
    const cache = new ModelCache<string>({
      capacity: 1,
      load: async (id) => id,
      dispose: (_m, id) => {
        disposed.push(id);
        if (id === 'a') throw new Error('boom');
      },
      onDisposeError: (err, id) => errors.push(`${id}: ${(err as Error).message}`),
    });
    (await cache.acquire('a')).release();
    const b = await cache.acquire('b');
    await new Promise((r) => setTimeout(r, 0));
    expect(errors).toEqual(['a: boom']);
    b.release();
    await cache.clear();
    expect(disposed).toEqual(['a', 'b']);
    expect(cache.ids()).toEqual([]);
    expect(cache.counters.evictions).toBe(1); // clear() is not an eviction
  });

  it('clear() leaves models that running requests hold', async () => {
    const disposed: string[] = [];
    const cache = instant(3, disposed);
    const a = await cache.acquire('a');
    (await cache.acquire('b')).release();
    await cache.clear();
    expect(disposed).toEqual(['b']);
    expect(cache.ids()).toEqual(['a']);
    a.release();
  });

  it('refuses a capacity below 1', () => {
    expect(() => instant(0)).toThrow(RangeError);
  });
});
