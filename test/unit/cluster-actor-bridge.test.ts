/**
 * The agent's bridge between a replica and the head (cluster/actor-bridge.ts): messages pass through
 * while attached; losing the head cancels its calls in the replica and fails the replica's calls
 * through it; a second head's call ids are shifted so they never meet the first head's.
 */
import { describe, expect, it } from 'vitest';
import { ActorBridge } from '../../packages/core/src/cluster/actor-bridge.js';
import { BaseChannel } from '../../packages/core/src/actor/channel.js';
import type { ProtocolMessage } from '../../packages/core/src/actor/protocol.js';
import type { StreamChannel } from '../../packages/core/src/actor/stream-channel.js';

/** One end of a channel pair: what is sent lands in `sent`; `receive` plays the other side. */
class FakeChannel extends BaseChannel {
  readonly sent: ProtocolMessage[] = [];
  send(msg: ProtocolMessage): boolean {
    this.sent.push(msg);
    return true;
  }
  receive(msg: ProtocolMessage): void {
    this.deliver(msg);
  }
  shutdown(reason: string): void {
    this.close(reason);
  }
}

const call = (id: number): ProtocolMessage => ({ type: 'call', id, method: 'm', args: [], requestId: `r${id}` });

function setup() {
  const replica = new FakeChannel();
  const bridge = new ActorBridge(replica);
  const head = new FakeChannel();
  const lost: string[] = [];
  bridge.attach(head as unknown as StreamChannel, (why) => lost.push(why));
  return { replica, bridge, head, lost };
}

describe('ActorBridge', () => {
  it('passes messages through unchanged while the first head is attached', () => {
    const { replica, head } = setup();
    head.receive(call(1));
    replica.receive({ type: 'result', id: 1, value: 'ok' });
    replica.receive({ type: 'comlink', message: { id: 'x' } });
    expect(replica.sent).toEqual([call(1)]);
    expect(head.sent).toEqual([
      { type: 'result', id: 1, value: 'ok' },
      { type: 'comlink', message: { id: 'x' } },
    ]);
  });

  it("on losing the head: cancels its open calls, fails the replica's calls through it, drops late answers", () => {
    const { replica, head, lost } = setup();
    head.receive(call(1));
    head.receive({ type: 'stream-open', id: 2, method: 's', args: [], requestId: 'r2', credit: 16 });
    head.receive(call(3));
    replica.receive({ type: 'result', id: 3, value: 'done' });
    replica.receive({ type: 'batch', messages: [call(7), { type: 'stream-item', id: 2, value: 'a' }] });
    head.shutdown('connection lost');
    expect(lost).toEqual(['connection lost']);
    const after = replica.sent.slice(3);
    expect(after).toEqual(
      expect.arrayContaining([
        { type: 'cancel', id: 1 },
        { type: 'cancel', id: 2 },
      ]),
    );
    expect(after.find((m) => m.type === 'error')).toMatchObject({
      id: 7,
      error: { name: 'ActorDiedError', data: { accepted: true } },
    });
    expect(after.some((m) => m.type === 'cancel' && m.id === 3)).toBe(false);
    const seen = head.sent.length;
    replica.receive({ type: 'result', id: 1, value: 'late' });
    expect(head.sent).toHaveLength(seen);
  });

  it("shifts a re-adopting head's call ids on the way in and back on the way out", () => {
    const { replica, bridge, head } = setup();
    head.receive(call(1));
    head.shutdown('head died');
    const head2 = new FakeChannel();
    bridge.attach(head2 as unknown as StreamChannel, () => {});
    head2.receive(call(1));
    const shifted = replica.sent.at(-1) as { type: string; id: number };
    expect(shifted.type).toBe('call');
    expect(shifted.id).not.toBe(1);
    // The first head's call 1 finishing late is dropped; the second head's answer comes back as id 1.
    replica.receive({ type: 'result', id: 1, value: 'old' });
    replica.receive({ type: 'result', id: shifted.id, value: 'new' });
    expect(head2.sent).toEqual([{ type: 'result', id: 1, value: 'new' }]);
    // The replica's own calls keep their ids both ways.
    replica.receive(call(9));
    head2.receive({ type: 'result', id: 9, value: 'relayed' });
    expect(head2.sent.at(-1)).toEqual(call(9));
    expect(replica.sent.at(-1)).toEqual({ type: 'result', id: 9, value: 'relayed' });
  });
});
