/**
 * Coalesces an RpcPeer's small data-plane messages into one `batch` message per event-loop turn.
 *
 * Why: an LLM engine step wakes every stream at once, and each stream's token (an SSE line, a string)
 * used to cost one postMessage, one 'message' event and one credit back — 64 streams, 64 messages each
 * way per step. Here the first message of a turn still leaves at once when traffic is light (no added
 * latency); the ones that follow in the same turn wait for setImmediate, which runs after the turn's
 * microtasks, so all streams woken by one engine step leave together. While traffic is heavy (the last
 * window held more than its first message) the first one waits too: one postMessage per turn.
 *
 * A message is deferred when its cloning cannot fail (no payload, or a primitive one), or when the
 * sender says what to do if it does (`onUnsendable`): a batch that cannot be cloned is resent one
 * message at a time, so a bad payload still fails only its own call. Anything else first flushes what is
 * pending, so order on the channel is kept.
 *
 * Riders (ride()) are messages that need not leave soon, such as a replica's report of its direct calls
 * for the parent's metrics: they go with whatever the outbox sends next, or on their own after RIDE_MS,
 * so that they never cost a channel message of their own while other traffic flows.
 *
 * A batch carrying string stream items leaves packed (PackedBatchMessage): postMessage's structured clone
 * costs per object, not per byte — 64 small message objects took 92–255 µs to send, one joined string ~27 µs.
 */
import type { Channel } from './channel.js';
import type { ProtocolMessage } from './protocol.js';
import { encodeBatch } from './batch-codec.js';

/** Counters for tests and benchmarks: how many messages RpcPeer sent vs. how many crossed the channel. */
export interface OutboxStats {
  /** Protocol messages handed to the outbox. */
  messages: number;
  /** channel.send calls (a batch counts once). */
  sends: number;
  /** Batches sent (each carries two or more messages). */
  batches: number;
}

export interface Held {
  msg: ProtocolMessage;
  onUnsendable?: (err: unknown) => void;
}

/** How long a rider waits for other traffic before it leaves alone. */
const RIDE_MS = 20;

interface Rider {
  msg: ProtocolMessage;
  /** Called as the rider leaves: after this, changes to msg are not seen. */
  onTaken?: () => void;
}

export class Outbox {
  readonly stats: OutboxStats = { messages: 0, sends: 0, batches: 0 };
  /** Messages held for the end of this turn; null when no window is open. */
  private pending: Held[] | null = null;
  /** The last window carried more than one message: traffic is heavy, so the next first one waits too. */
  private busy = false;
  /** Messages of the open window, including one sent at once. */
  private windowMessages = 0;
  private riders: Rider[] = [];
  private riderTimer: NodeJS.Timeout | undefined;

  constructor(private readonly channel: Channel) {}

  /**
   * Sends `msg` now, or with the rest of this turn's messages when it is deferrable: its payload is
   * primitive, or `onUnsendable` says what to do if it turns out not to be cloneable. Sent at once, it
   * returns what channel.send returns (false: the other side is gone) and throws what it throws;
   * deferred messages report true.
   */
  send(msg: ProtocolMessage, onUnsendable?: (err: unknown) => void): boolean {
    this.stats.messages++;
    // A closed channel's answer (false) must reach the caller now; a close after deferral fails the
    // caller's calls through the channel's close event instead.
    const deferrable = !this.channel.closed && (onUnsendable !== undefined || hasPrimitivePayload(msg));
    if (this.pending && deferrable) {
      this.pending.push({ msg, onUnsendable });
      this.windowMessages++;
      return true;
    }
    if (this.busy && deferrable) {
      // Under load every turn has company: one postMessage per turn instead of two.
      this.open().push({ msg, onUnsendable });
      this.windowMessages = 1;
      return true;
    }
    this.flush();
    this.stats.sends++;
    const sent = this.riders.length > 0 ? this.sendWithRiders(msg) : this.channel.send(msg);
    // Open a window: what else this turn produces goes out in one message.
    if (sent && !this.pending) {
      this.open();
      this.windowMessages = 1;
    }
    return sent;
  }

  /**
   * Sends `msg` with the next message or batch, or alone after RIDE_MS. It must be cloneable, and may
   * still change until `onTaken` runs (e.g. more events appended to an array it carries).
   */
  ride(msg: ProtocolMessage, onTaken?: () => void): void {
    this.stats.messages++;
    this.riders.push({ msg, onTaken });
    if (!this.riderTimer) {
      this.riderTimer = setTimeout(() => {
        this.riderTimer = undefined;
        const riders = this.takeRiders();
        if (riders.length === 0) return;
        this.stats.sends++;
        this.sendQuietly(riders.length === 1 ? riders[0]! : { type: 'batch', messages: riders });
      }, RIDE_MS);
      this.riderTimer.unref();
    }
  }

  private takeRiders(): ProtocolMessage[] {
    const riders = this.riders;
    if (riders.length === 0) return [];
    this.riders = [];
    clearTimeout(this.riderTimer);
    this.riderTimer = undefined;
    for (const r of riders) r.onTaken?.();
    return riders.map((r) => r.msg);
  }

  /** `msg` after the riders, in one message; what channel.send returns or throws for `msg` alone. */
  private sendWithRiders(msg: ProtocolMessage): boolean {
    const riders = this.takeRiders();
    try {
      return this.channel.send({ type: 'batch', messages: [...riders, msg] });
    } catch {
      // `msg` cannot be cloned (riders always can): the riders leave alone, and `msg` throws as usual.
      this.sendQuietly({ type: 'batch', messages: riders });
      return this.channel.send(msg);
    }
  }

  private sendQuietly(msg: ProtocolMessage): void {
    try {
      this.channel.send(msg);
    } catch {
      // Riders are plain data; a failure here loses only a report.
    }
  }

  private open(): Held[] {
    const pending: Held[] = [];
    this.pending = pending;
    setImmediate(() => {
      if (this.pending === pending) this.flush();
    });
    return pending;
  }

  /** Sends what is pending (one message, or one batch) and closes the window. */
  flush(): void {
    let pending = this.pending;
    if (!pending) return;
    this.pending = null;
    if (this.riders.length > 0) pending = [...this.takeRiders().map((msg) => ({ msg })), ...pending];
    this.busy = this.windowMessages > 1;
    this.windowMessages = 0;
    if (pending.length === 0) return;
    if (pending.length === 1) return this.sendHeld(pending[0]!);
    try {
      // A packed batch is a channel-level encoding, unpacked by the receiving channel (Channel.send).
      this.channel.send(encodeBatch(pending) as ProtocolMessage);
      this.stats.sends++;
      this.stats.batches++;
    } catch {
      // Something in the batch cannot be cloned: one at a time, so that only that message's call fails.
      for (const held of pending) this.sendHeld(held);
    }
  }

  private sendHeld(held: Held): void {
    this.stats.sends++;
    try {
      this.channel.send(held.msg);
    } catch (err) {
      held.onUnsendable?.(err);
    }
  }
}

/** True for messages whose cloning cannot fail: no payload, or a primitive one. */
function hasPrimitivePayload(msg: ProtocolMessage): boolean {
  switch (msg.type) {
    case 'credit':
    case 'cancel':
    case 'accepted':
    case 'stream-end':
      return true;
    case 'stream-item':
    case 'result': {
      const v = msg.value;
      return v === null || v === undefined || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
    }
    default:
      return false;
  }
}
