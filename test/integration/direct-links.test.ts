/**
 * Direct links between replicas: a replica's handle calls go straight to the callee's replicas (a
 * MessagePort between threads, a local socket when a process is involved), not through the parent.
 * Observed through the parent's relay counters (unchanged by direct calls) and its link stats; real
 * worker threads and child processes throughout.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ActorDiedError, startServe, type RequestEvent, type ServeInstance } from '@flotilla/core';
import { linked, type Placement } from '../fixtures/apps/direct-links.js';
import { eventually } from '../helpers/eventually.js';

const relayedBy = (instance: ServeInstance) => instance.linkStats().relayed['l/LinkCaller'] ?? 0;

/** Waits until the caller's replicas hold a link to each of `n` callee replicas. */
const linkedTo = (instance: ServeInstance, n: number) =>
  eventually(
    () => instance.linkStats().links,
    (links) => links >= n,
  );

const pairs: [Placement, Placement][] = [
  ['thread', 'thread'],
  ['thread', 'process'],
  ['process', 'process'],
  ['process', 'thread'],
];

for (const [callerPlacement, calleePlacement] of pairs) {
  describe(`${callerPlacement} replica → ${calleePlacement} replica`, () => {
    let instance: ServeInstance;
    const events: RequestEvent[] = [];
    beforeAll(async () => {
      instance = await startServe({
        applications: [{ name: 'l', app: linked(callerPlacement, calleePlacement) }],
        checkpoint: false,
      });
      instance.on('request', (e) => events.push(e));
      await linkedTo(instance, 1);
    }, 120_000);
    afterAll(async () => {
      await instance?.shutdown();
    });

    it('unary calls go direct, not through the parent', async () => {
      const caller = instance.getHandle('l');
      const before = relayedBy(instance);
      for (let i = 0; i < 5; i++) {
        const r = await caller.echo(i);
        expect(r.inner.x).toBe(i);
        if (calleePlacement === 'process') expect(r.inner.pid).not.toBe(process.pid);
        else expect(r.inner.mainThread).toBe(false);
        if (callerPlacement === 'thread' && calleePlacement === 'thread') expect(r.inner.threadId).not.toBe(r.threadId);
      }
      expect(relayedBy(instance)).toBe(before);
      // The parent's metrics still see them, reported by the caller.
      await eventually(
        () =>
          events.filter((e) => e.deployment === 'LinkCallee' && e.caller === 'replica' && e.method === 'echo').length,
        (n) => n >= 5,
      );
    });

    it('streams go direct, in order', async () => {
      const before = relayedBy(instance);
      const items: number[] = [];
      for await (const x of instance.getHandle('l').stream.count(40)) items.push(x as number);
      expect(items).toEqual(Array.from({ length: 40 }, (_, i) => i * 10));
      expect(relayedBy(instance)).toBe(before);
    });

    it('errors keep their class across the link', async () => {
      expect(await instance.getHandle('l').fail()).toMatchObject({
        name: 'UserCodeError',
        code: 'USER_ERROR',
        message: 'callee says no',
      });
    });

    it("cancelling the outer call cancels the callee's call, unary and stream", async () => {
      const caller = instance.getHandle('l');
      const callee = instance.getHandle('l', 'LinkCallee');
      const before = relayedBy(instance);
      const tag = `u-${callerPlacement}-${calleePlacement}`;
      await expect(caller.options({ timeoutMs: 300 }).hang(tag)).rejects.toMatchObject({ code: 'REQUEST_TIMEOUT' });
      await eventually(
        () => callee.cancelledTags(),
        (tags: string[]) => tags.includes(tag),
      );
      const stag = `s-${callerPlacement}-${calleePlacement}`;
      let n = 0;
      for await (const _ of caller.stream.endless(stag)) if (++n === 3) break;
      await eventually(
        () => callee.cancelledTags(),
        (tags: string[]) => tags.includes(stag),
      );
      expect(relayedBy(instance)).toBe(before);
    });
  });
}

describe('a callee replica that dies mid-call', () => {
  let instance: ServeInstance | undefined;
  afterEach(async () => {
    await instance?.shutdown();
    instance = undefined;
  });

  for (const calleePlacement of ['thread', 'process'] as const) {
    it(`fails the direct call with ActorDiedError (thread → ${calleePlacement}), then the replacement is linked`, {
      timeout: 180_000,
    }, async () => {
      instance = await startServe({
        applications: [{ name: 'l', app: linked('thread', calleePlacement) }],
        checkpoint: false,
      });
      await linkedTo(instance, 1);
      const caller = instance.getHandle('l');
      const first = (await caller.echo(1)).inner.replica;
      const before = relayedBy(instance);
      const err = await caller.dieMidCall().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ActorDiedError);
      expect((err as ActorDiedError).data).toMatchObject({ accepted: true });
      expect(relayedBy(instance)).toBe(before);
      // The controller replaces the replica; the caller's set follows, with a link to the new one.
      const next = await eventually(
        async () => (await caller.echo(2).catch(() => undefined))?.inner.replica,
        (id) => id !== undefined && id !== first,
        60_000,
      );
      await eventually(
        () => instance!.linkStats().links,
        (links) => links >= 1,
      );
      const relayedNow = relayedBy(instance);
      expect((await caller.echo(3)).inner.replica).toBe(next);
      expect(relayedBy(instance)).toBe(relayedNow);
    });
  }
});

describe('scaling the callee', () => {
  let instance: ServeInstance | undefined;
  afterAll(async () => {
    await instance?.shutdown();
  });

  it("adds the new replicas to the caller's set", { timeout: 180_000 }, async () => {
    instance = await startServe({
      applications: [{ name: 'l', app: linked('thread', 'thread', 1) }],
      checkpoint: false,
    });
    await linkedTo(instance, 1);
    const caller = instance.getHandle('l');
    expect(await caller.replicas(10)).toHaveLength(1);
    await instance.apply([{ name: 'l', app: linked('thread', 'thread', 2) }]);
    await linkedTo(instance, 2);
    const before = relayedBy(instance);
    // Power of two choices over two idle replicas: both answer 40 calls (all but certainly).
    expect(await caller.replicas(40)).toHaveLength(2);
    expect(relayedBy(instance)).toBe(before);
  });
});

describe('directLinks: false', () => {
  it('relays every call through the parent, as before', { timeout: 120_000 }, async () => {
    await using instance = await startServe({
      applications: [{ name: 'l', app: linked('thread', 'thread') }],
      checkpoint: false,
      directLinks: false,
    });
    const caller = instance.getHandle('l');
    for (let i = 0; i < 3; i++) expect((await caller.echo(i)).inner.x).toBe(i);
    expect(relayedBy(instance)).toBe(3);
    expect(instance.linkStats().links).toBe(0);
  });
});
