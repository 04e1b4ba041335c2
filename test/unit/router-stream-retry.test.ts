/**
 * Which streams the router runs again after a replica death (pure policy over fake replicas): a stream
 * that yielded nothing, whose replica is dead, is retried even though the replica had accepted it; one
 * that yielded something is not (the caller has part of an answer), and neither is an ActorDiedError
 * relayed by a replica that is still alive (a deployment further down died).
 */
import { describe, expect, it } from 'vitest';
import { Router, type RoutedReplica } from '../../packages/core/src/router/router.js';
import { ActorDiedError } from '../../packages/core/src/errors.js';

interface Script {
  /** Items yielded before the failure (or before the end, with no failure). */
  items: unknown[];
  /** Thrown after the items; the replica is then marked dead unless `relayed`. */
  fail?: 'accepted-death' | 'relayed-death';
}

/** Replicas whose streams follow `scripts[id]`; `dies` flips `alive` like a ChannelActor whose channel closed. */
function fakes(scripts: Record<string, Script>) {
  const opened: string[] = [];
  const replicas: RoutedReplica[] = Object.entries(scripts).map(([id, script]) => {
    const actor = {
      alive: true,
      call: () => Promise.reject(new Error('unused')),
      async *stream() {
        opened.push(id);
        for (const item of script.items) yield item;
        if (script.fail === 'accepted-death') {
          actor.alive = false;
          throw new ActorDiedError(`actor died: ${id} killed`, { accepted: true, retryable: false });
        }
        if (script.fail === 'relayed-death')
          throw new ActorDiedError('actor died: a replica further down', { accepted: true, retryable: false });
      },
    };
    return { id, maxOngoing: 8, actor };
  });
  return { opened, replicas };
}

async function drain(stream: AsyncIterable<unknown>): Promise<{ items: unknown[]; error?: unknown }> {
  const items: unknown[] = [];
  try {
    for await (const item of stream) items.push(item);
    return { items };
  } catch (error) {
    return { items, error };
  }
}

/** With random() = 0 and equal loads, power of two choices takes the replicas in order: r1 first. */
async function run(scripts: Record<string, Script>) {
  const { opened, replicas } = fakes(scripts);
  const router = new Router({ app: 'a', deployment: 'D', caller: 'ingress', maxQueuedRequests: -1, random: () => 0 });
  router.setReplicas(replicas);
  const result = await drain(router.stream('m', [], { requestId: 'q' }));
  return { ...result, opened };
}

describe('Router: streams after a replica death', () => {
  it('retries, on the other replica, a stream whose replica died after accepting it but before yielding', async () => {
    const { items, error, opened } = await run({
      r1: { items: [], fail: 'accepted-death' },
      r2: { items: ['a', 'b'] },
    });
    expect(error).toBeUndefined();
    expect(items).toEqual(['a', 'b']);
    expect(opened).toEqual(['r1', 'r2']);
  });

  it('does not retry a stream that had yielded: the caller gets ActorDiedError after the items', async () => {
    const { items, error, opened } = await run({
      r1: { items: ['x'], fail: 'accepted-death' },
      r2: { items: ['y'] },
    });
    expect(opened).toEqual(['r1']);
    expect(items).toEqual(['x']);
    expect(error).toBeInstanceOf(ActorDiedError);
  });

  it('does not retry an ActorDiedError relayed by a replica that is alive', async () => {
    const { items, error, opened } = await run({
      r1: { items: [], fail: 'relayed-death' },
      r2: { items: ['y'] },
    });
    expect(opened).toEqual(['r1']);
    expect(items).toEqual([]);
    expect(error).toBeInstanceOf(ActorDiedError);
  });

  it('gives up after a bounded number of deaths', async () => {
    const scripts: Record<string, Script> = {};
    for (let i = 0; i < 8; i++) scripts[`r${i}`] = { items: [], fail: 'accepted-death' };
    const { error, opened } = await run(scripts);
    expect(error).toBeInstanceOf(ActorDiedError);
    // The first try and MAX_DEATH_RETRIES (3) more.
    expect(opened).toEqual(['r0', 'r1', 'r2', 'r3']);
  });
});
