import { describe, expect, it, vi } from 'vitest';
import { Router, type RoutedReplica } from '../../packages/core/src/router/router.js';
import {
  ActorDiedError,
  BackPressureError,
  RequestCancelledError,
  UnavailableError,
} from '../../packages/core/src/errors.js';

type Call = { replica: string; resolve(v: unknown): void; reject(e: unknown): void };

/** Fake replicas whose calls stay pending until the test settles them. */
function fakes(ids: string[], maxOngoing = 1) {
  const calls: Call[] = [];
  const replicas: RoutedReplica[] = ids.map((id) => ({
    id,
    maxOngoing,
    actor: {
      call: () => new Promise((resolve, reject) => calls.push({ replica: id, resolve, reject })),
      stream: () => {
        throw new Error('unused');
      },
    },
  }));
  return { calls, replicas };
}

const tick = () => new Promise((r) => setTimeout(r, 0));
const router = (maxQueuedRequests = -1) =>
  new Router({ app: 'a', deployment: 'D', caller: 'ingress', maxQueuedRequests });

describe('Router', () => {
  it('queues beyond maxOngoingRequests and sends in order as slots free', async () => {
    const { calls, replicas } = fakes(['r1']);
    const r = router();
    r.setReplicas(replicas);
    const p1 = r.call('m', [], { requestId: '1' });
    const p2 = r.call('m', [], { requestId: '2' });
    await tick();
    expect(calls).toHaveLength(1);
    expect(r.queued).toBe(1);
    calls[0]!.resolve('one');
    expect(await p1).toBe('one');
    await tick();
    calls[1]!.resolve('two');
    expect(await p2).toBe('two');
    expect(r.inFlight).toBe(0);
  });

  it('answers BackPressureError past maxQueuedRequests', async () => {
    const { replicas } = fakes(['r1']);
    const r = router(1);
    r.setReplicas(replicas);
    void r.call('m', [], { requestId: '1' });
    void r.call('m', [], { requestId: '2' });
    await expect(r.call('m', [], { requestId: '3' })).rejects.toBeInstanceOf(BackPressureError);
  });

  it('retries a call whose replica died before accepting it, and not one that was accepted', async () => {
    const { calls, replicas } = fakes(['r1', 'r2'], 5);
    const r = router();
    r.setReplicas(replicas);
    const p = r.call('m', [], { requestId: '1' });
    await tick();
    const first = calls[0]!;
    first.reject(new ActorDiedError('gone', { accepted: false, retryable: true }));
    await tick();
    expect(calls[1]!.replica).not.toBe(first.replica);
    calls[1]!.resolve('ok');
    expect(await p).toBe('ok');
    const q = r.call('m', [], { requestId: '2' });
    await tick();
    calls[2]!.reject(new ActorDiedError('gone', { accepted: true, retryable: false }));
    await expect(q).rejects.toBeInstanceOf(ActorDiedError);
  });

  it('waits for replicas that are not running yet; fails queued calls when the deployment fails', async () => {
    const r = router();
    const p = r.call('m', [], { requestId: '1' });
    await tick();
    expect(r.queued).toBe(1);
    r.setUnavailable(new UnavailableError('failed'));
    await expect(p).rejects.toBeInstanceOf(UnavailableError);
  });

  it('an aborted signal removes a queued call', async () => {
    const { replicas } = fakes(['r1']);
    const r = router();
    r.setReplicas(replicas);
    void r.call('m', [], { requestId: '1' });
    const ac = new AbortController();
    const p = r.call('m', [], { requestId: '2', signal: ac.signal });
    await tick();
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(RequestCancelledError);
    expect(r.queued).toBe(0);
  });

  it('sends calls with the same routingKey to the same replica (sticky sessions)', async () => {
    const { calls, replicas } = fakes(['r1', 'r2', 'r3', 'r4'], 8);
    const r = router();
    r.setReplicas(replicas);
    const landed = async (key: string) => {
      const p = r.call('m', [], { requestId: key, routingKey: key });
      await tick();
      calls.at(-1)!.resolve('ok');
      await p;
      return calls.at(-1)!.replica;
    };
    for (const key of ['session-a', 'session-b', 'session-c']) {
      const first = await landed(key);
      for (let i = 0; i < 5; i++) expect(await landed(key)).toBe(first);
    }
  });

  it('leaves a sticky replica that is much busier than the others (power of two choices instead)', async () => {
    const { calls, replicas } = fakes(['r1', 'r2', 'r3', 'r4'], 16);
    const r = router();
    r.setReplicas(replicas);
    // Held calls pile up on the key's replica until it is 4 above the idle ones; then load wins.
    for (let i = 0; i < 8; i++) void r.call('m', [], { requestId: String(i), routingKey: 'hot' });
    await tick();
    const preferred = calls[0]!.replica;
    expect(calls.slice(0, 5).every((c) => c.replica === preferred)).toBe(true);
    expect(calls.slice(5).some((c) => c.replica !== preferred)).toBe(true);
  });

  it("with routing prefix-aware, keys calls by the deployment's routingKey(method, args)", async () => {
    const { calls, replicas } = fakes(['r1', 'r2', 'r3', 'r4'], 8);
    const seen: Array<[string, unknown[]]> = [];
    const r = new Router({
      app: 'a',
      deployment: 'D',
      caller: 'ingress',
      maxQueuedRequests: -1,
      routing: 'prefix-aware',
      routingKey: (method, args) => {
        seen.push([method, [...args]]);
        return (args[0] as { text: string }).text.slice(0, 40);
      },
    });
    r.setReplicas(replicas);
    const landed = async (text: string, opts: { routingKey?: string } = {}) => {
      const p = r.call('complete', [{ text }], { requestId: text, ...opts });
      await tick();
      calls.at(-1)!.resolve('done');
      await p;
      return calls.at(-1)!.replica;
    };
    const system = 'You are a helpful assistant. '.repeat(4);
    const shared = new Set<string>();
    for (let i = 0; i < 8; i++) shared.add(await landed(`${system} question ${i}`));
    expect(shared.size).toBe(1);
    expect(seen[0]).toEqual(['complete', [{ text: `${system} question 0` }]]);
    const spread = new Set<string>();
    for (let i = 0; i < 40; i++) spread.add(await landed(`topic ${i}: ${system}`));
    expect(spread.size).toBeGreaterThan(1);
    // A call's own key wins over the class's: it is not even asked.
    const asked = seen.length;
    const own = new Set<string>();
    for (let i = 0; i < 6; i++) own.add(await landed(`topic ${i}: ${system}`, { routingKey: 'session-1' }));
    expect(own.size).toBe(1);
    expect(seen).toHaveLength(asked);
  });

  it('asks the routingKey only with routing prefix-aware; one that throws costs the call its affinity, not the call', async () => {
    const { calls, replicas } = fakes(['r1', 'r2', 'r3'], 8);
    let asked = 0;
    const routingKey = () => {
      asked++;
      return 'same';
    };
    const r = new Router({ app: 'a', deployment: 'D', caller: 'ingress', maxQueuedRequests: -1, routingKey });
    r.setReplicas(replicas);
    const run = async (n: number) => {
      const from = calls.length;
      for (let i = 0; i < n; i++) {
        const p = r.call('m', [i], { requestId: String(i) });
        await tick();
        calls.at(-1)!.resolve('ok');
        expect(await p).toBe('ok');
      }
      return new Set(calls.slice(from).map((c) => c.replica));
    };
    expect((await run(30)).size).toBeGreaterThan(1); // pow2: the key is not asked for
    expect(asked).toBe(0);
    r.configure({ maxQueuedRequests: -1, routing: 'prefix-aware', routingKey });
    expect((await run(10)).size).toBe(1);
    expect(asked).toBe(10);
    let warnings: string[] = [];
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      r.configure({
        maxQueuedRequests: -1,
        routing: 'prefix-aware',
        routingKey: () => {
          throw new Error('bad key');
        },
      });
      expect((await run(30)).size).toBeGreaterThan(1);
      warnings = stderr.mock.calls.map((c) => String(c[0]));
    } finally {
      stderr.mockRestore();
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/D\.routingKey threw \(bad key\)/);
  });

  it('retries a call refused "full" even when its timer fires a millisecond early and the clock ticks during dispatch', async () => {
    // A replica that answered "full" is skipped for 10 ms. Node may run the retry timer a millisecond
    // before that by Date.now(); if the clock then ticked between the retry's pick (still blocked) and
    // the scheduling of the next retry (no longer blocked), no timer was set and the call waited for
    // ever (seen as 408s through the proxy under load, when two callers share one replica's slots).
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let clock = 1_000;
    let tickOnRead = false;
    const now = vi.spyOn(Date, 'now').mockImplementation(() => (tickOnRead ? clock++ : clock));
    try {
      const { calls, replicas } = fakes(['r1'], 2);
      const r = router(0);
      r.setReplicas(replicas);
      let settled: unknown;
      const p = r.call('m', [], { requestId: '1' }).then((v) => (settled = v));
      await Promise.resolve();
      calls[0]!.reject(new UnavailableError('replica at maxOngoingRequests', { retryable: true, reason: 'full' }));
      await vi.advanceTimersByTimeAsync(0);
      expect(calls).toHaveLength(1); // blocked until 1_010: the call waits, requeued
      clock = 1_009; // the retry timer runs at 1_009 by Date.now() ...
      tickOnRead = true; // ... and each later read of the clock finds it a millisecond on
      await vi.advanceTimersByTimeAsync(10);
      tickOnRead = false;
      clock = 1_020;
      await vi.advanceTimersByTimeAsync(20);
      expect(calls).toHaveLength(2);
      calls[1]!.resolve('ok');
      await p;
      expect(settled).toBe('ok');
    } finally {
      now.mockRestore();
      vi.useRealTimers();
    }
  });
});
