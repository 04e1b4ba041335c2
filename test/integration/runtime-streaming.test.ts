import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, RequestCancelledError, RequestTimeoutError, type ServeInstance } from '@flotilla/core';
import { app } from '../fixtures/apps/streaming.js';

/** Polls until `check` is true (cancellation reaches the far replica asynchronously). */
async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('streaming through two hops (process relay → thread source)', () => {
  let instance: ServeInstance;
  beforeAll(async () => {
    instance = await startServe({ applications: [{ name: 'stream', app: app() }] });
  });
  afterAll(async () => {
    await instance?.shutdown();
  });

  const finalized = async (requestId: string) => {
    const source = await instance.getHandle('stream', 'Source').wasFinalized(requestId);
    const relay = await instance.getHandle('stream', 'Relay').wasFinalized(requestId);
    return source && relay;
  };

  it('delivers every item in order, more than the credit window', async () => {
    const items: number[] = [];
    for await (const x of instance.getHandle('stream').stream.ticks(50, 0)) items.push((x as { tick: number }).tick);
    expect(items).toEqual([...Array(50).keys()]);
  });

  it("breaking out of the loop runs the generators' finally in both replicas", async () => {
    const requestId = 'break-1';
    const handle = instance.getHandle('stream').options({ requestId });
    const got: unknown[] = [];
    for await (const x of handle.stream.ticks(1000, 20)) {
      got.push(x);
      if (got.length === 3) break;
    }
    expect(got).toEqual([{ tick: 0 }, { tick: 1 }, { tick: 2 }]);
    await eventually(() => finalized(requestId));
  });

  it('aborting the signal cancels the stream and the replica generators', async () => {
    const requestId = 'abort-1';
    const controller = new AbortController();
    const handle = instance.getHandle('stream').options({ requestId, signal: controller.signal });
    const got: unknown[] = [];
    const consume = (async () => {
      for await (const x of handle.stream.ticks(1000, 20)) {
        got.push(x);
        if (got.length === 2) controller.abort();
      }
    })();
    await expect(consume).rejects.toBeInstanceOf(RequestCancelledError);
    await eventually(() => finalized(requestId));
  });

  it('a timeout ends the stream with RequestTimeoutError and cancels downstream', async () => {
    const requestId = 'timeout-1';
    const handle = instance.getHandle('stream').options({ requestId, timeoutMs: 300 });
    const consume = (async () => {
      for await (const _ of handle.stream.ticks(1000, 50)) {
        /* drain */
      }
    })();
    await expect(consume).rejects.toBeInstanceOf(RequestTimeoutError);
    await eventually(() => finalized(requestId));
  });

  it('a slow consumer holds the producer back (credit-based back-pressure)', async () => {
    const requestId = 'slow-1';
    const it = instance
      .getHandle('stream')
      .options({ requestId })
      .remoteStream('ticks', [10_000, 0])
      [Symbol.asyncIterator]();
    await it.next();
    await new Promise((r) => setTimeout(r, 300));
    // Without credits the source would have produced all 10 000 ticks by now; each hop buffers one window.
    const produced = await instance.getHandle('stream', 'Source').producedCount(requestId);
    expect(produced).toBeGreaterThan(1);
    expect(produced).toBeLessThan(100);
    let last = 0;
    for (let i = 0; i < 40; i++) last = ((await it.next()).value as { tick: number }).tick;
    expect(last).toBe(40);
    await it.return!(undefined);
    await eventually(() => finalized(requestId));
  });
});
