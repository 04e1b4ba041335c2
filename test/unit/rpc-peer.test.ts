/**
 * RpcPeer over a real MessageChannel (the worker-thread transport's PortChannel on both ends): stream
 * items produced in one turn cross as one `batch` message, in order and complete, while credits still
 * bound how far the producer runs ahead of its consumer.
 */
import { MessageChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { PortChannel } from '../../packages/core/src/actor/channel.js';
import { RpcPeer, type CallServer, type IncomingCall } from '../../packages/core/src/actor/rpc-peer.js';

interface Pair {
  client: RpcPeer;
  server: RpcPeer;
  received: () => number;
  close: () => void;
}

function connect(stream: (call: IncomingCall) => AsyncIterable<unknown>): Pair {
  const { port1, port2 } = new MessageChannel();
  const clientChannel = new PortChannel(port1);
  let received = 0;
  // Every listener call is one message off the port: what coalescing saves.
  clientChannel.onMessage(() => {
    received++;
  });
  const server: CallServer = {
    admit: () => null,
    unary: async (call) => ({ echo: call.args[0] }),
    stream: (call) => stream(call),
    release: () => {},
  };
  return {
    client: new RpcPeer(clientChannel),
    server: new RpcPeer(new PortChannel(port2), server),
    received: () => received,
    close: () => {
      port1.close();
      port2.close();
    },
  };
}

let pair: Pair | undefined;
afterEach(() => {
  pair?.close();
  pair = undefined;
});

describe('RpcPeer stream coalescing', () => {
  it('delivers 1000 synchronously produced items complete and in order, in far fewer messages', async () => {
    pair = connect(async function* () {
      for (let i = 0; i < 1000; i++) yield `data: ${i}\n\n`;
    });
    const got: unknown[] = [];
    for await (const item of pair.client.stream('gen', [], { requestId: 'r1' })) got.push(item);
    expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => `data: ${i}\n\n`));
    const stats = pair.server.messageStats;
    expect(stats.messages).toBeGreaterThanOrEqual(1001); // 1000 items + stream-end (+ accepted)
    expect(stats.batches).toBeGreaterThan(0);
    // Credits come back every 8 items, so a turn carries about 8 items: well under one message per item.
    expect(stats.sends).toBeLessThan(stats.messages / 3);
    expect(pair.received()).toBe(stats.sends);
  });

  it('coalesces across streams: many streams woken in one turn share messages both ways', async () => {
    pair = connect(async function* (call) {
      for (let i = 0; i < 100; i++) {
        yield `${call.requestId}:${i}`;
        await new Promise((r) => setImmediate(r));
      }
    });
    const streams = Array.from({ length: 32 }, async (_, s) => {
      const got: unknown[] = [];
      for await (const item of pair!.client.stream('gen', [], { requestId: `s${s}` })) got.push(item);
      expect(got).toEqual(Array.from({ length: 100 }, (_, i) => `s${s}:${i}`));
    });
    await Promise.all(streams);
    const server = pair.server.messageStats;
    const client = pair.client.messageStats;
    expect(server.sends).toBeLessThan(server.messages / 4);
    // Credits (and the opens, which are never deferred) from the consumer side.
    expect(client.sends).toBeLessThan(client.messages);
  });

  it('still bounds the producer by the credit window', async () => {
    let produced = 0;
    pair = connect(async function* () {
      for (;;) {
        produced++;
        yield produced;
      }
    });
    const it = pair.client.stream('gen', [], { requestId: 'r2' })[Symbol.asyncIterator]();
    for (let i = 1; i <= 5; i++) expect((await it.next()).value).toBe(i);
    await new Promise((r) => setTimeout(r, 100));
    // 16 credits at open, none returned yet (they go back 8 at a time): the producer waits at its 17th yield.
    expect(produced).toBeLessThanOrEqual(17);
    for (let i = 6; i <= 40; i++) expect((await it.next()).value).toBe(i);
    await new Promise((r) => setTimeout(r, 100));
    expect(produced).toBeLessThanOrEqual(40 + 17);
    await it.return!(undefined);
  });

  it('keeps order between deferred strings and objects sent at once', async () => {
    pair = connect(async function* () {
      for (let i = 0; i < 50; i++) yield i % 3 === 0 ? { i } : `s${i}`;
    });
    const got: unknown[] = [];
    for await (const item of pair.client.stream('gen', [], { requestId: 'r3' })) got.push(item);
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => (i % 3 === 0 ? { i } : `s${i}`)));
  });

  it('reports an item that cannot be cloned as an error after the items before it', async () => {
    let finalized = false;
    pair = connect(async function* () {
      try {
        yield 'a';
        yield 'b';
        yield () => 1;
        yield 'never';
      } finally {
        finalized = true;
      }
    });
    const got: unknown[] = [];
    await expect(
      (async () => {
        for await (const item of pair!.client.stream('gen', [], { requestId: 'r4' })) got.push(item);
      })(),
    ).rejects.toThrow(/could not be cloned/);
    expect(got).toEqual(['a', 'b']);
    await new Promise((r) => setTimeout(r, 20));
    expect(finalized).toBe(true);
  });

  it('fails only the call whose arguments cannot be cloned when calls of one turn share a message', async () => {
    pair = connect(async function* () {
      yield 1;
    });
    const opts = (requestId: string) => ({ requestId });
    const calls = [
      pair.client.call('m', [{ n: 1 }], opts('c1')),
      pair.client.call('m', [{ n: 2 }], opts('c2')),
      pair.client.call('m', [() => 3], opts('c3')),
      pair.client.call('m', [{ n: 4 }], opts('c4')),
    ];
    const settled = await Promise.allSettled(calls);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((settled[3] as PromiseFulfilledResult<unknown>).value).toEqual({ echo: { n: 4 } });
    expect((settled[2] as PromiseRejectedResult).reason).toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('sends the calls of one turn as two messages: the first at once, the rest together', async () => {
    pair = connect(async function* () {
      yield 1;
    });
    const values = await Promise.all(
      Array.from({ length: 10 }, (_, i) => pair!.client.call('m', [i], { requestId: `u${i}` })),
    );
    expect(values).toEqual(Array.from({ length: 10 }, (_, i) => ({ echo: i })));
    expect(pair.client.messageStats).toMatchObject({ messages: 10, sends: 2, batches: 1 });
  });
});
