import { describe, expect, it } from 'vitest';
import { Router, type RoutedReplica } from '../../packages/core/src/router/router.js';
import { modelIdFunctionOf } from '../../packages/core/src/router/routing-key.js';
import { DeploymentConfigError } from '../../packages/core/src/errors.js';

type Call = { replica: string; model: string | undefined; resolve(v: unknown): void };

/** Fake replicas whose calls stay pending until the test settles them; each records the model id it was sent. */
function fakes(ids: string[], maxOngoing = 2) {
  const calls: Call[] = [];
  const replicas: RoutedReplica[] = ids.map((id) => ({
    id,
    maxOngoing,
    actor: {
      call: (_m: string, _a: unknown[], opts: { multiplexedModelId?: string }) =>
        new Promise((resolve) => calls.push({ replica: id, model: opts.multiplexedModelId, resolve })),
      stream: () => {
        throw new Error('unused');
      },
    },
  }));
  return { calls, replicas };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('Router with multiplexed model ids', () => {
  it('sends repeated ids to the replica it first sent them to, and passes the id on to the replica', async () => {
    const { calls, replicas } = fakes(['r1', 'r2', 'r3'], 100);
    const r = new Router({ app: 'a', deployment: 'D', caller: 'ingress', maxQueuedRequests: -1 });
    r.setReplicas(replicas);
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++)
      pending.push(r.call('m', [], { requestId: `${i}`, multiplexedModelId: `model-${i % 3}` }));
    await tick();
    const home = new Map<string, Set<string>>();
    for (const c of calls) home.set(c.model!, (home.get(c.model!) ?? new Set()).add(c.replica));
    expect([...home.values()].map((s) => s.size)).toEqual([1, 1, 1]);
    for (const c of calls) c.resolve('ok');
    await Promise.all(pending);
  });

  it('follows the replicas’ reports: an id a replica reports is routed there', async () => {
    const { calls, replicas } = fakes(['r1', 'r2', 'r3'], 100);
    const r = new Router({ app: 'a', deployment: 'D', caller: 'ingress', maxQueuedRequests: -1 });
    r.setReplicas(replicas);
    r.setModels(
      new Map([
        ['r1', { ids: ['x'], capacity: 2 }],
        ['r2', { ids: ['y'], capacity: 2 }],
        ['r3', { ids: ['z'], capacity: 2 }],
      ]),
    );
    const p = ['z', 'y', 'x', 'z'].map((m, i) => r.call('m', [], { requestId: `${i}`, multiplexedModelId: m }));
    await tick();
    expect(calls.map((c) => `${c.model}@${c.replica}`)).toEqual(['z@r3', 'y@r2', 'x@r1', 'z@r3']);
    expect(r.modelViews().get('r3')).toEqual(['z']);
    for (const c of calls) c.resolve('ok');
    await Promise.all(p);
  });

  it('a queued call keeps its model id: it reaches the replica, which the view then counts as holding it', async () => {
    const { calls, replicas } = fakes(['r1', 'r2'], 1);
    const r = new Router({ app: 'a', deployment: 'D', caller: 'ingress', maxQueuedRequests: -1 });
    r.setReplicas(replicas);
    r.setModels(new Map([['r2', { ids: ['x'], capacity: 2 }]]));
    const a = r.call('m', [], { requestId: 'a', multiplexedModelId: 'x' }); // r2 (holder)
    const b = r.call('m', [], { requestId: 'b', multiplexedModelId: 'y' }); // r1 (the only free one)
    const c = r.call('m', [], { requestId: 'c', multiplexedModelId: 'y' }); // queued
    await tick();
    expect(calls.map((x) => x.replica)).toEqual(['r2', 'r1']);
    expect(r.modelViews().get('r2')).toEqual(['x']);
    calls[0]!.resolve('ok'); // r2 frees first; y's holder r1 is full, so y is loaded on r2 rather than waiting
    await a;
    await tick();
    expect(calls.map((x) => x.replica)).toEqual(['r2', 'r1', 'r2']);
    expect(calls[2]!.model).toBe('y');
    expect(r.modelViews().get('r2')).toEqual(['y', 'x']);
    calls[1]!.resolve('ok');
    calls[2]!.resolve('ok');
    await Promise.all([b, c]);
  });

  it("derives a call's model id with the class's static multiplexedModelId where the caller named none", async () => {
    const { calls, replicas } = fakes(['r1', 'r2'], 100);
    // Stands for a deployment class: only its static is read.
    const Front = {
      multiplexedModelId(method: string, args: readonly unknown[]) {
        if (method === 'boom') throw new Error('bad body');
        return method === 'handleHttp' ? (args[0] as { body?: { model?: unknown } }).body?.model : undefined;
      },
    };
    const r = new Router({
      app: 'a',
      deployment: 'D',
      caller: 'ingress',
      maxQueuedRequests: -1,
      modelIdOf: modelIdFunctionOf(Front, 'test'),
    });
    r.setReplicas(replicas);
    const p = [
      r.call('handleHttp', [{ body: { model: 'gpt-x' } }], { requestId: '1' }),
      r.call('handleHttp', [{ body: { model: 'gpt-x' } }], { requestId: '2', multiplexedModelId: 'explicit' }),
      r.call('handleHttp', [{ body: { model: '' } }], { requestId: '3' }),
      r.call('other', [], { requestId: '4' }),
      r.call('boom', [], { requestId: '5' }),
    ];
    await tick();
    expect(calls.map((c) => c.model)).toEqual(['gpt-x', 'explicit', undefined, undefined, undefined]);
    for (const c of calls) c.resolve('ok');
    await Promise.all(p);
    expect(() => modelIdFunctionOf({ multiplexedModelId: 'model' }, 'X')).toThrow(DeploymentConfigError);
    expect(modelIdFunctionOf({}, 'X')).toBeUndefined();
  });

  it('routes by a derived id only once a replica reports a loader in use (a caller-named id always)', async () => {
    const { calls, replicas } = fakes(['r1', 'r2', 'r3'], 100);
    const r = new Router({
      app: 'a',
      deployment: 'D',
      caller: 'ingress',
      maxQueuedRequests: -1,
      modelIdOf: (_m, args) => String(args[0]),
    });
    r.setReplicas(replicas);
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 6; i++) pending.push(r.call('m', ['base'], { requestId: `${i}` }));
    await tick();
    // No report yet: by load (spread over the replicas), views untouched, the id still sent on.
    expect(new Set(calls.map((c) => c.replica)).size).toBeGreaterThan(1);
    expect(calls.every((c) => c.model === 'base')).toBe(true);
    expect([...r.modelViews().values()].every((ids) => ids.length === 0)).toBe(true);
    r.setModels(new Map([['r3', { ids: ['base'], capacity: 2 }]]));
    for (let i = 0; i < 3; i++) pending.push(r.call('m', ['base'], { requestId: `b${i}` }));
    await tick();
    expect(calls.slice(6).map((c) => c.replica)).toEqual(['r3', 'r3', 'r3']);
    for (const c of calls) c.resolve('ok');
    await Promise.all(pending);
  });
});
