/**
 * @multiplexed outside the runtime: the decorated loader on a plain instance (pins follow the request
 * context the replica would run it in), its errors, and what the controller reads from the class.
 */
import { describe, expect, it } from 'vitest';
import {
  BadRequestError,
  buildGraph,
  deployment,
  DeploymentConfigError,
  ModelLoadError,
  multiplexed,
  NotFoundError,
} from '@flotilla/core';
import { buildSpecs } from '../../packages/core/src/controller/application-state.js';
import { hasMultiplexedLoader, multiplexedReport } from '../../packages/core/src/multiplexed.js';
import { endRequest, requestContextStorage, type RequestContext } from '../../packages/core/src/request-context.js';
import { methodsOf } from '../../packages/core/src/replica/user-callable.js';

class Catalogue {
  loads: string[] = [];
  disposed: string[] = [];

  @multiplexed({ maxModelsPerReplica: 1 })
  async model(id?: string): Promise<{ id: string; dispose(): void }> {
    this.loads.push(id!);
    if (id === 'unknown') throw new NotFoundError(`no model '${id}'`);
    if (id === 'broken') throw new Error('weights are truncated');
    return { id: id!, dispose: () => void this.disposed.push(id!) };
  }

  predict() {
    return 1;
  }
}

const ctx = (id?: string): RequestContext => ({
  requestId: `r-${id}`,
  signal: new AbortController().signal,
  app: 'a',
  deployment: 'D',
  method: 'predict',
  ...(id ? { multiplexedModelId: id } : {}),
});

describe('@multiplexed', () => {
  it("loads the request's model, pins it until the request ends, then evicts past capacity", async () => {
    const c = new Catalogue();
    const a = ctx('a');
    const m = await requestContextStorage.run(a, () => c.model());
    expect(m.id).toBe('a');
    // b loads while a's request still runs: a stays (pinned), b is the one that goes when b's request ends.
    const b = ctx('b');
    await requestContextStorage.run(b, () => c.model());
    endRequest(b);
    expect(c.disposed).toEqual(['b']);
    endRequest(a);
    expect(await c.model('a')).toBe(m); // outside a request: served from the cache, not pinned
    expect(c.loads).toEqual(['a', 'b']);
    expect(multiplexedReport()).toMatchObject({ ids: ['a'] });
  });

  it('fails clearly: no id, a loader error wrapped as ModelLoadError, a typed one passed through', async () => {
    const c = new Catalogue();
    await expect(c.model()).rejects.toBeInstanceOf(BadRequestError);
    const broken = await c.model('broken').catch((e: unknown) => e);
    expect(broken).toBeInstanceOf(ModelLoadError);
    expect((broken as ModelLoadError).code).toBe('MODEL_LOAD_FAILED');
    expect((broken as ModelLoadError).data).toMatchObject({ modelId: 'broken' });
    expect((broken as Error).message).toContain('weights are truncated');
    await expect(c.model('unknown')).rejects.toBeInstanceOf(NotFoundError);
    expect(() => multiplexed({ maxModelsPerReplica: 0 })).toThrow(BadRequestError);
  });

  it('keeps the loader out of the callable methods, and is found on subclasses', () => {
    expect(Object.keys(methodsOf(new Catalogue()))).toEqual(['predict']);
    class Sub extends Catalogue {}
    expect(hasMultiplexedLoader(Sub)).toBe(true);
    expect(hasMultiplexedLoader(class {})).toBe(false);
  });

  it('the controller reads a static multiplexedModelId, and refuses a loader in a pool deployment', () => {
    @deployment({})
    class Derived extends Catalogue {
      static multiplexedModelId(method: string, args: readonly unknown[]) {
        return method === 'predict' ? String(args[0]) : undefined;
      }
    }
    @deployment({ pool: { maxThreads: 2 } })
    class Pooled extends Catalogue {}
    const [spec] = buildSpecs('app', buildGraph('app', Derived.bind()), undefined);
    expect(spec!.multiplexedModelId!('predict', ['m7'])).toBe('m7');
    expect(spec!.multiplexedModelId!('other', [])).toBeUndefined();
    expect(() => buildSpecs('app', buildGraph('app', Pooled.bind()), undefined)).toThrow(DeploymentConfigError);
    expect(() => buildSpecs('app', buildGraph('app', Pooled.bind()), undefined)).toThrow(/pool/);
  });
  it('takes the capacity from the instance when given as a function, checked at the first load', async () => {
    class Sized {
      constructor(readonly slots: number) {}
      disposed: string[] = [];
      @multiplexed({ maxModelsPerReplica: (self: Sized) => self.slots })
      async model(id?: string) {
        return { id: id!, dispose: () => void this.disposed.push(id!) };
      }
    }
    const two = new Sized(2);
    for (const id of ['a', 'b', 'c']) await two.model(id);
    expect(two.disposed).toEqual(['a']); // two kept, the least recently used went
    const one = new Sized(1);
    for (const id of ['a', 'b']) await one.model(id);
    expect(one.disposed).toEqual(['a']);
    await expect(new Sized(0).model('a')).rejects.toBeInstanceOf(BadRequestError);
  });
});
