/**
 * Calls and streams over a Channel, in both directions: the same peer class runs in the parent (calling
 * replica methods, serving relayed handle calls) and in the replica (serving methods, making handle calls).
 *
 * Streams are credit-based: the consumer opens with STREAM_WINDOW credits and returns them as it
 * consumes, so a slow consumer stalls the producer's generator at a `yield` instead of buffering tokens.
 * Cancelling (break, AbortSignal, timeout) sends `cancel`; the producer then calls the generator's
 * return(), which runs its finally blocks.
 */
import { ActorDiedError, FlotillaError, RequestCancelledError, UnavailableError } from '../errors.js';
import { Cancellation, abortReason, abortSourceOf, offAbort, onAbort } from './cancellation.js';
import type { MessagePort, TransferListItem } from 'node:worker_threads';
import type { Channel } from './channel.js';
import { decodeBatch } from './batch-codec.js';
import { Outbox, type OutboxStats } from './outbox.js';
import { takeArgsTransferList, takeTransferList } from './transfer.js';
import {
  errorFromWire,
  errorToWire,
  type HandleTarget,
  type ProtocolMessage,
  type CallMessage,
  type LinkMessage,
  type PackedBatchMessage,
  type StreamOpenMessage,
} from './protocol.js';

export interface IncomingCall {
  target?: HandleTarget;
  method: string;
  args: unknown[];
  requestId: string;
  /** CallOptions.routingKey of a relayed handle call. */
  routingKey?: string;
  stream: boolean;
  /** Aborted when the caller cancels or goes away; its AbortSignal is built only if read. Set by RpcPeer. */
  cancel?: Cancellation;
}

/** The side that runs calls: a replica (user methods) or the parent (relayed handle calls). */
export interface CallServer {
  /** null admits the call; a reason rejects it before it runs (the caller may retry elsewhere). */
  admit(call: IncomingCall): 'full' | 'draining' | null;
  /** `signal` is call.cancel.signal, or undefined for a server with lazySignal. */
  unary(call: IncomingCall, signal?: AbortSignal): Promise<unknown>;
  stream(call: IncomingCall, signal?: AbortSignal): AsyncIterable<unknown>;
  /** After an admitted call finished, whatever the outcome. */
  release(call: IncomingCall): void;
  /**
   * True when the server reads call.cancel (building an AbortSignal only when its user code asks for
   * one): unary/stream then get no signal. Default: false (each call's signal is built up front).
   */
  readonly lazySignal?: boolean;
}

export interface OutgoingOptions {
  target?: HandleTarget;
  requestId: string;
  /** With `cancel`, read only if cancel is absent (see abortSourceOf). */
  signal?: AbortSignal;
  cancel?: Cancellation;
  routingKey?: string;
}

const STREAM_WINDOW = 16;

interface Outgoing {
  requestId: string;
  accepted: boolean;
  fail(err: Error): void;
  onMessage(msg: ProtocolMessage): void;
}

interface Incoming {
  call: IncomingCall;
  cancel: Cancellation;
  credit: number;
  wake?: () => void;
}

/** True for errors raised before the callee accepted the call: safe to retry on another replica. */
export function isRetryable(err: unknown): boolean {
  return err instanceof FlotillaError && err.data?.retryable === true;
}

export { abortReason };

export class RpcPeer {
  private nextId = 0;
  private readonly outgoing = new Map<number, Outgoing>();
  private readonly incoming = new Map<number, Incoming>();
  private closeReason: string | undefined;
  /** Calls admitted this turn, acknowledged together at its end unless answered by then. */
  private unacknowledged: [number, Incoming][] = [];
  /** Every data-plane message leaves through here, so that one engine step's tokens cross as one message. */
  private readonly outbox: Outbox;

  /** `onLink` receives the link messages that arrive (see LinkMessage); others ignore them. */
  constructor(
    private readonly channel: Channel,
    private readonly server?: CallServer,
    private readonly onLink?: (link: LinkMessage) => void,
  ) {
    this.outbox = new Outbox(channel);
    channel.onMessage((msg) => this.onMessage(msg));
    channel.onClose((reason) => this.onClose(reason));
  }

  get pendingCount(): number {
    return this.outgoing.size;
  }

  /** Sends the messages held for the end of this turn now (before a message that bypasses the peer). */
  flush(): void {
    this.outbox.flush();
  }

  /** Messages sent vs. channel sends (coalescing at work); for tests and benchmarks. */
  get messageStats(): Readonly<OutboxStats> {
    return this.outbox.stats;
  }

  call(method: string, args: unknown[], opts: OutgoingOptions): Promise<unknown> {
    const source = abortSourceOf(opts);
    if (source?.aborted) return Promise.reject(abortReason(source));
    return new Promise((resolve, reject) => {
      const id = ++this.nextId;
      const aborted =
        source &&
        (() => {
          this.sendCancel(id);
          entry.fail(abortReason(source));
        });
      const done = () => {
        this.outgoing.delete(id);
        if (aborted) offAbort(source!, aborted);
      };
      const entry: Outgoing = {
        requestId: opts.requestId,
        accepted: false,
        fail: (err) => {
          done();
          reject(err);
        },
        onMessage: (msg) => {
          if (msg.type === 'result') {
            done();
            resolve(msg.value);
          } else if (msg.type === 'accepted') entry.accepted = true;
          else if (msg.type === 'error') {
            done();
            reject(errorFromWire(msg.error));
          } else if (msg.type === 'rejected') entry.fail(rejectedError(msg.reason));
        },
      };
      this.outgoing.set(id, entry);
      if (aborted) onAbort(source!, aborted);
      this.post(callMessage('call', id, method, args, opts), entry);
    });
  }

  async *stream(method: string, args: unknown[], opts: OutgoingOptions): AsyncGenerator<unknown> {
    const id = ++this.nextId;
    const items: unknown[] = [];
    let ended = false;
    let error: Error | undefined;
    let wake: (() => void) | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const entry: Outgoing = {
      requestId: opts.requestId,
      accepted: false,
      fail: (err) => {
        this.outgoing.delete(id);
        error = err;
        items.length = 0;
        notify();
      },
      onMessage: (msg) => {
        if (msg.type === 'accepted') entry.accepted = true;
        else if (msg.type === 'stream-item') items.push(msg.value);
        else if (msg.type === 'stream-end') {
          ended = true;
          this.outgoing.delete(id);
        } else if (msg.type === 'error') {
          error = errorFromWire(msg.error);
          this.outgoing.delete(id);
        } else if (msg.type === 'rejected') entry.fail(rejectedError(msg.reason));
        notify();
      },
    };
    const source = abortSourceOf(opts);
    if (source?.aborted) throw abortReason(source);
    const aborted = () => {
      this.sendCancel(id);
      entry.fail(abortReason(source!));
    };
    if (source) onAbort(source, aborted);
    this.outgoing.set(id, entry);
    this.post({ ...callMessage('call', id, method, args, opts), type: 'stream-open', credit: STREAM_WINDOW }, entry);
    let consumed = 0;
    try {
      for (;;) {
        if (items.length > 0) {
          const value = items.shift();
          if (++consumed >= STREAM_WINDOW / 2) {
            this.outbox.send({ type: 'credit', id, n: consumed });
            consumed = 0;
          }
          yield value;
        } else if (error) throw error;
        else if (ended) return;
        else
          await new Promise<void>((r) => {
            wake = r;
          });
      }
    } finally {
      if (source) offAbort(source, aborted);
      if (this.outgoing.delete(id)) this.sendCancel(id);
    }
  }

  /** Sends a link message now, with the MessagePorts it carries (which only a PortChannel can move). */
  sendLink(link: LinkMessage, transfer?: readonly MessagePort[]): boolean {
    return this.channel.send({ type: 'link', id: 0, link }, transfer);
  }

  /** Sends a link message with the next data-plane traffic, or soon (Outbox.ride). */
  rideLink(link: LinkMessage, onTaken?: () => void): void {
    this.outbox.ride({ type: 'link', id: 0, link }, onTaken);
  }

  /** Cancels every outgoing call of a request (ActorRef.cancel). */
  cancelRequest(requestId: string): void {
    for (const [id, entry] of this.outgoing) {
      if (entry.requestId !== requestId) continue;
      this.sendCancel(id);
      entry.fail(new RequestCancelledError(`request ${requestId} cancelled`));
    }
  }

  private post(msg: CallMessage | StreamOpenMessage, entry: Outgoing): void {
    // Arguments that cannot be cloned (functions, class instances with private state), found now or
    // when the outbox flushes: the call fails as a bad request.
    const unsendable = (err: unknown) =>
      entry.fail(errorFromWire({ ...errorToWire(err), name: 'BadRequestError', code: 'BAD_REQUEST' }));
    let sent: boolean;
    try {
      const moved = takeArgsTransferList(msg.args);
      sent = moved ? this.sendMoving(msg, moved) : this.outbox.send(msg, unsendable);
    } catch (err) {
      return unsendable(err);
    }
    if (!sent) entry.fail(diedError(this.closeReason ?? 'channel closed', false));
  }

  private sendCancel(id: number): void {
    this.outbox.send({ type: 'cancel', id });
  }

  private onMessage(msg: ProtocolMessage): void {
    switch (msg.type) {
      case 'call':
      case 'stream-open':
        return this.onIncoming(msg);
      case 'credit': {
        const entry = this.incoming.get(msg.id);
        if (entry) {
          entry.credit += msg.n;
          entry.wake?.();
        }
        return;
      }
      case 'cancel': {
        const entry = this.incoming.get(msg.id);
        if (entry) {
          entry.cancel.abort(new RequestCancelledError('cancelled by the caller'));
          entry.wake?.();
        }
        return;
      }
      case 'comlink':
        return;
      case 'link':
        return this.onLink?.(msg.link);
      case 'batch':
        for (const m of msg.messages) this.onMessage(m);
        return;
      default:
        // A channel that passes messages on without BaseChannel.deliver (a test double) may hand over a packed batch.
        if ((msg as { type: string }).type === 'packed-batch')
          return this.onMessage(decodeBatch(msg as unknown as PackedBatchMessage));
        this.outgoing.get(msg.id)?.onMessage(msg);
    }
  }

  private onIncoming(msg: CallMessage | StreamOpenMessage): void {
    if (!this.server) return void this.outbox.send({ type: 'rejected', id: msg.id, reason: 'draining' });
    const cancel = new Cancellation();
    const call: IncomingCall = {
      target: msg.target,
      method: msg.method,
      args: msg.args,
      requestId: msg.requestId,
      routingKey: msg.routingKey,
      stream: msg.type === 'stream-open',
      cancel,
    };
    const reason = this.server.admit(call);
    if (reason) return void this.outbox.send({ type: 'rejected', id: msg.id, reason });
    const entry: Incoming = { call, cancel, credit: msg.type === 'stream-open' ? msg.credit : 0 };
    this.incoming.set(msg.id, entry);
    // Acknowledged at the end of the turn unless already answered (an answer implies acceptance): fast
    // calls then cost one message back instead of two, and one timer serves every call of the turn.
    if (this.unacknowledged.push([msg.id, entry]) === 1) setImmediate(() => this.acknowledge());
    const run = call.stream ? this.serveStream(msg.id, entry) : this.serveUnary(msg.id, entry);
    void run.finally(() => {
      this.incoming.delete(msg.id);
      this.server!.release(call);
    });
  }

  private acknowledge(): void {
    const calls = this.unacknowledged;
    this.unacknowledged = [];
    for (const [id, entry] of calls) if (this.incoming.get(id) === entry) this.outbox.send({ type: 'accepted', id });
  }

  private signalFor(entry: Incoming): AbortSignal | undefined {
    return this.server!.lazySignal ? undefined : entry.cancel.signal;
  }

  private async serveUnary(id: number, entry: Incoming): Promise<void> {
    try {
      const value = await this.server!.unary(entry.call, this.signalFor(entry));
      this.sendSafely({ type: 'result', id, value }, id, entry);
    } catch (err) {
      this.outbox.send({ type: 'error', id, error: errorToWire(err) });
    }
  }

  private async serveStream(id: number, entry: Incoming): Promise<void> {
    const cancel = entry.cancel;
    let it: AsyncIterator<unknown> | undefined;
    let finished = false;
    try {
      it = this.server!.stream(entry.call, this.signalFor(entry))[Symbol.asyncIterator]();
      for (;;) {
        while (entry.credit <= 0 && !cancel.aborted)
          await new Promise<void>((r) => {
            entry.wake = r;
          });
        if (cancel.aborted) break;
        const r = await it.next();
        if (r.done) {
          finished = true;
          this.outbox.send({ type: 'stream-end', id });
          break;
        }
        if (cancel.aborted) break;
        entry.credit--;
        if (!this.sendSafely({ type: 'stream-item', id, value: r.value }, id, entry)) break;
      }
    } catch (err) {
      finished = true;
      this.outbox.send({ type: 'error', id, error: errorToWire(err) });
    } finally {
      if (!finished) await it?.return?.(undefined).catch(() => undefined);
    }
  }

  /**
   * Sends a value; a value that cannot be cloned becomes an error for the caller instead. Found at once,
   * that returns false; found when the outbox flushes, it stops the call (a stream's generator is closed).
   */
  private sendSafely(msg: ProtocolMessage, id: number, entry: Incoming): boolean {
    const unsendable = (err: unknown) => {
      this.outbox.send({ type: 'error', id, error: errorToWire(err) });
      entry.cancel.abort(new RequestCancelledError('a value could not be sent to the caller'));
      entry.wake?.();
    };
    try {
      const moved = 'value' in msg ? takeTransferList(msg.value) : undefined;
      if (moved) {
        this.sendMoving(msg, moved);
        return true;
      }
      this.outbox.send(msg, unsendable);
      return true;
    } catch (err) {
      this.outbox.send({ type: 'error', id, error: errorToWire(err) });
      return false;
    }
  }

  /**
   * A message with buffers to move (transfer.ts) leaves alone, now, after what the outbox holds (so it
   * keeps its place in the order); channels other than a MessagePort copy the buffers as they serialize.
   */
  private sendMoving(msg: ProtocolMessage, moved: TransferListItem[]): boolean {
    this.outbox.flush();
    return this.channel.send(msg, moved);
  }

  private onClose(reason: string): void {
    this.closeReason = reason;
    for (const entry of [...this.outgoing.values()]) entry.fail(diedError(reason, entry.accepted));
    for (const entry of this.incoming.values()) {
      entry.cancel.abort(new RequestCancelledError(`caller gone: ${reason}`));
      entry.wake?.();
    }
  }
}

function callMessage(
  type: 'call' | 'stream-open',
  id: number,
  method: string,
  args: unknown[],
  opts: OutgoingOptions,
): CallMessage {
  // Only the fields that are set: each one costs its structured clone.
  const msg = { type, id, method, args, requestId: opts.requestId } as CallMessage;
  if (opts.target) msg.target = opts.target;
  if (opts.routingKey !== undefined) msg.routingKey = opts.routingKey;
  return msg;
}

function diedError(reason: string, accepted: boolean): ActorDiedError {
  return new ActorDiedError(`actor died: ${reason}`, { accepted, retryable: !accepted });
}

function rejectedError(reason: 'full' | 'draining'): UnavailableError {
  return new UnavailableError(`replica ${reason === 'full' ? 'at maxOngoingRequests' : 'draining'}`, {
    retryable: true,
    reason,
  });
}
