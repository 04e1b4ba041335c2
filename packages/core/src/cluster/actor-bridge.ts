/**
 * An agent's bridge between one replica process (IPC) and the head (an ActorChannel stream). It passes
 * the protocol messages through untouched, except that it keeps track of the calls open across it, so
 * that the replica can outlive the head's connection and be re-adopted by a restarted head:
 *
 * - detach() (the head is gone): the calls the head had made are cancelled in the replica (their slots
 *   free up) and the handle calls the replica had made through the head fail with ActorDiedError;
 *   whatever the replica still sends for them is dropped.
 * - attach() (re-adopted): the new head's peer numbers its calls from 1 again, while the replica may
 *   still be finishing an old call of the same number, so from the second attachment on, the ids of
 *   the head's calls are shifted by an epoch offset on the way in and back on the way out.
 *
 * Which call an id names depends on the direction (protocol.ts): from the head, `call`, `stream-open`,
 * `credit` and `cancel` name the head's calls and the answers name the replica's; from the replica, the
 * other way round.
 */
import type { StreamChannel } from '../actor/stream-channel.js';
import type { Channel } from '../actor/channel.js';
import type { ProtocolMessage, WireError } from '../actor/protocol.js';

const EPOCH = 2 ** 30;
const OPENERS = new Set(['call', 'stream-open']);
const CALLER_SIDE = new Set(['call', 'stream-open', 'credit', 'cancel']);
const ENDS = new Set(['result', 'error', 'stream-end', 'rejected']);

export class ActorBridge {
  private stream: StreamChannel | undefined;
  private epoch = -1;
  /** Calls of the head (replica-side ids) and of the replica, open across the bridge. */
  private readonly headCalls = new Set<number>();
  private readonly replicaCalls = new Set<number>();

  constructor(private readonly replica: Channel) {
    replica.onMessage((msg) => this.fromReplica(msg));
  }

  get attached(): boolean {
    return this.stream !== undefined;
  }

  /** Connects a (new) head stream; `onLost` runs when that stream closes without detach(). */
  attach(stream: StreamChannel, onLost: (reason: string) => void): void {
    this.stream = stream;
    this.epoch++;
    stream.onMessage((msg) => {
      if (this.stream === stream) this.fromHead(msg);
    });
    stream.onClose((reason) => {
      if (this.stream !== stream) return;
      this.detach(`the head's channel closed: ${reason}`);
      onLost(reason);
    });
  }

  /** The head is gone: cancel its calls in the replica and fail the replica's calls through it. */
  detach(reason: string): void {
    const stream = this.stream;
    this.stream = undefined;
    for (const id of this.headCalls) this.replica.send({ type: 'cancel', id });
    const error: WireError = {
      name: 'ActorDiedError',
      code: 'ACTOR_DIED',
      message: `the head is gone: ${reason}`,
      data: { accepted: true, retryable: false },
    };
    for (const id of this.replicaCalls) this.replica.send({ type: 'error', id, error });
    this.headCalls.clear();
    this.replicaCalls.clear();
    stream?.shutdown(reason);
  }

  private fromHead(msg: ProtocolMessage): void {
    this.replica.send(this.mapFromHead(msg));
  }

  private fromReplica(msg: ProtocolMessage): void {
    if (!this.stream) return;
    const m = this.mapFromReplica(msg);
    if (m) this.stream.send(m);
  }

  private mapFromHead(msg: ProtocolMessage): ProtocolMessage {
    if (msg.type === 'batch') return { type: 'batch', messages: msg.messages.map((m) => this.mapFromHead(m)) };
    if (msg.type === 'comlink') return msg;
    const offset = this.epoch * EPOCH;
    if (CALLER_SIDE.has(msg.type)) {
      const id = msg.id + offset;
      if (OPENERS.has(msg.type)) this.headCalls.add(id);
      else if (msg.type === 'cancel') this.headCalls.delete(id);
      return offset === 0 ? msg : { ...msg, id };
    }
    if (ENDS.has(msg.type)) this.replicaCalls.delete(msg.id);
    return msg;
  }

  private mapFromReplica(msg: ProtocolMessage): ProtocolMessage | undefined {
    if (msg.type === 'batch') {
      const messages = msg.messages
        .map((m) => this.mapFromReplica(m))
        .filter((m): m is ProtocolMessage => m !== undefined);
      return messages.length > 0 ? { type: 'batch', messages } : undefined;
    }
    if (msg.type === 'comlink') return msg;
    if (CALLER_SIDE.has(msg.type)) {
      if (OPENERS.has(msg.type)) this.replicaCalls.add(msg.id);
      else if (msg.type === 'cancel') this.replicaCalls.delete(msg.id);
      return msg;
    }
    // An answer to a call of a head that is gone (an earlier epoch) is dropped.
    if (!this.headCalls.has(msg.id)) return undefined;
    if (ENDS.has(msg.type)) this.headCalls.delete(msg.id);
    const offset = this.epoch * EPOCH;
    return offset === 0 ? msg : { ...msg, id: msg.id - offset };
  }
}
