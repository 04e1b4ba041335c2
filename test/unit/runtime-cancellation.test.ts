/**
 * The request path's cheap cancellation (actor/cancellation.ts) and message batching (actor/outbox.ts):
 * a Cancellation behaves like an AbortController whose signal exists only once read; handles pass it
 * down unchanged; RpcPeer calls over a real MessageChannel are cancelled through it; under load the
 * outbox sends one message per turn.
 */
import { MessageChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Cancellation } from '../../packages/core/src/actor/cancellation.js';
import { PortChannel, type Channel } from '../../packages/core/src/actor/channel.js';
import { Outbox } from '../../packages/core/src/actor/outbox.js';
import type { ProtocolMessage } from '../../packages/core/src/actor/protocol.js';
import { RpcPeer, type CallServer } from '../../packages/core/src/actor/rpc-peer.js';
import { resolveCallOptions } from '../../packages/core/src/handle.js';
import { RequestCancelledError, RequestTimeoutError } from '../../packages/core/src/errors.js';

const turn = () => new Promise<void>((r) => setImmediate(r));

describe('Cancellation', () => {
  it('calls its listeners once, and a signal read before or after abort carries the reason', () => {
    const c = new Cancellation();
    const early = c.signal;
    const calls: string[] = [];
    const removed = () => calls.push('removed');
    c.onAbort(() => calls.push('a'));
    c.onAbort(removed);
    c.offAbort(removed);
    const reason = new RequestCancelledError('gone');
    c.abort(reason);
    c.abort(new Error('second'));
    expect(calls).toEqual(['a']);
    expect(early.aborted).toBe(true);
    expect(early.reason).toBe(reason);
    const late = new Cancellation();
    late.abort(reason);
    expect(late.signal.aborted).toBe(true);
    expect(late.signal.reason).toBe(reason);
  });

  it('goes down through resolveCallOptions as is, and a timeout folds into a new one', () => {
    vi.useFakeTimers();
    try {
      const c = new Cancellation();
      const passed = resolveCallOptions({ requestId: 'r', cancel: c });
      expect(passed.cancel).toBe(c);
      expect(passed.signal).toBe(c.signal);
      const timed = resolveCallOptions({ requestId: 'r', cancel: c, timeoutMs: 50 });
      expect(timed.cancel).not.toBe(c);
      vi.advanceTimersByTime(60);
      expect(timed.cancel!.reason).toBeInstanceOf(RequestTimeoutError);
      expect(c.aborted).toBe(false);
      const child = resolveCallOptions({ timeoutMs: 1000 }, { requestId: 'parent', cancel: c });
      c.abort(new RequestCancelledError('parent cancelled'));
      expect(child.requestId).toBe('parent');
      expect(child.cancel!.reason).toBe(c.reason);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('RpcPeer with a Cancellation', () => {
  let close: (() => void) | undefined;
  afterEach(() => {
    close?.();
    close = undefined;
  });

  it('cancels the callee when the caller aborts, and the callee sees it without having built a signal', async () => {
    const { port1, port2 } = new MessageChannel();
    close = () => {
      port1.close();
      port2.close();
    };
    let seen: Cancellation | undefined;
    let signalArg: AbortSignal | undefined | 'unset' = 'unset';
    const server: CallServer = {
      lazySignal: true,
      admit: () => null,
      unary: (call, signal) => {
        seen = call.cancel;
        signalArg = signal;
        return new Promise((_, reject) => call.cancel!.onAbort(() => reject(call.cancel!.reason)));
      },
      stream: () => {
        throw new Error('unused');
      },
      release: () => {},
    };
    const client = new RpcPeer(new PortChannel(port1));
    new RpcPeer(new PortChannel(port2), server);
    const cancel = new Cancellation();
    const call = client.call('wait', [], { requestId: 'r1', cancel });
    while (!seen) await turn();
    expect(signalArg).toBeUndefined();
    cancel.abort(new RequestCancelledError('client left'));
    await expect(call).rejects.toThrow(/client left/);
    while (!seen.aborted) await turn();
    expect(seen.reason).toBeInstanceOf(RequestCancelledError);
  });
});

describe('Outbox', () => {
  function fakeChannel(): Channel & { sent: ProtocolMessage[] } {
    const sent: ProtocolMessage[] = [];
    return {
      sent,
      closed: false,
      send: (m) => {
        sent.push(m);
        return true;
      },
      onMessage: () => {},
      onClose: () => {},
    };
  }
  const credit = (id: number): ProtocolMessage => ({ type: 'credit', id, n: 1 });

  it('sends the first message of a quiet turn at once, and one message per turn while busy', async () => {
    const channel = fakeChannel();
    const outbox = new Outbox(channel);
    outbox.send(credit(1));
    expect(channel.sent).toHaveLength(1);
    outbox.send(credit(2));
    outbox.send(credit(3));
    await turn();
    expect(channel.sent.map((m) => m.type)).toEqual(['credit', 'batch']);
    // Busy now: a whole turn leaves as one batch.
    for (const id of [4, 5, 6]) outbox.send(credit(id));
    expect(channel.sent).toHaveLength(2);
    await turn();
    expect(channel.sent).toHaveLength(3);
    expect((channel.sent[2] as { messages: ProtocolMessage[] }).messages).toHaveLength(3);
    // One message in a turn ends the busy spell: the next one leaves at once again.
    outbox.send(credit(7));
    await turn();
    expect(channel.sent).toHaveLength(4);
    outbox.send(credit(8));
    expect(channel.sent).toHaveLength(5);
    expect(outbox.stats).toEqual({ messages: 8, sends: 5, batches: 2 });
  });
});
