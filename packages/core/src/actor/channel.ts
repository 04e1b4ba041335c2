/**
 * One duplex pipe of ProtocolMessages to an actor: a worker's MessagePort or a child's IPC channel.
 * Both ends of both transports look the same to RpcPeer and to comlink.
 */
import type { Worker, MessagePort, TransferListItem } from 'node:worker_threads';
import type { ChildProcess } from 'node:child_process';
import type { Endpoint } from 'comlink';
import { decodeBatch } from './batch-codec.js';
import { ShmFiles, unpackShm } from './shm-bytes.js';
import type { PackedBatchMessage, ProtocolMessage } from './protocol.js';

export interface Channel {
  /**
   * Returns false when the other side is gone (the message was not sent). `msg` may also be a
   * PackedBatchMessage from the outbox (typed as a ProtocolMessage there): the receiving channel unpacks
   * it before its listeners see it. `transfer`: MessagePorts and ArrayBuffers moved with the message
   * (PortChannel only; other channels cannot carry ports and copy buffers as they serialize).
   */
  send(msg: ProtocolMessage, transfer?: readonly TransferListItem[]): boolean;
  onMessage(listener: (msg: ProtocolMessage) => void): void;
  /** Called once when the other side is gone; reason is human-readable. */
  onClose(listener: (reason: string) => void): void;
  readonly closed: boolean;
}

/** Listener bookkeeping shared by every Channel (also stream-channel.ts). */
export class BaseChannel {
  closed = false;
  private readonly messageListeners: ((msg: ProtocolMessage) => void)[] = [];
  private readonly closeListeners: ((reason: string) => void)[] = [];

  onMessage(listener: (msg: ProtocolMessage) => void): void {
    this.messageListeners.push(listener);
  }
  onClose(listener: (reason: string) => void): void {
    this.closeListeners.push(listener);
  }

  protected deliver(wire: ProtocolMessage | PackedBatchMessage): void {
    const msg = wire.type === 'packed-batch' ? decodeBatch(wire) : wire;
    for (const l of this.messageListeners) l(msg);
  }

  protected close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.closeListeners) l(reason);
  }
}

/** Parent side of a worker thread, or the worker's own parentPort. */
export class PortChannel extends BaseChannel implements Channel {
  /** `closeReason`: what a MessagePort's close reports (a Worker reports its exit). */
  constructor(
    private readonly port: Worker | MessagePort,
    closeReason = 'port closed',
  ) {
    super();
    port.on('message', (msg: ProtocolMessage) => this.deliver(msg));
    if ('threadId' in port && 'terminate' in port) {
      port.on('exit', (code: number) => this.close(`thread exited with code ${code}`));
      port.on('error', (err: Error) => this.close(`thread crashed: ${err.message}`));
    } else {
      port.on('close', () => this.close(closeReason));
    }
  }

  send(msg: ProtocolMessage, transfer?: readonly TransferListItem[]): boolean {
    if (this.closed) return false;
    if (transfer) this.port.postMessage(msg, transfer);
    else this.port.postMessage(msg);
    return true;
  }

  /** Closes a MessagePort's side (the other side sees 'close'); a Worker's is closed by terminating it. */
  shutdown(reason: string): void {
    if (!('threadId' in this.port && 'terminate' in this.port)) (this.port as MessagePort).close();
    this.close(reason);
  }
}

/** Parent side of a forked child (pass the ChildProcess) or the child's side (pass `process`). */
export class IpcChannel extends BaseChannel implements Channel {
  /** Large marked byte arrays go through /dev/shm files rather than the pipe (shm-bytes.ts). */
  private readonly shm = new ShmFiles();

  constructor(private readonly proc: ChildProcess | NodeJS.Process) {
    super();
    proc.on('message', (msg: unknown) => {
      let m: ProtocolMessage;
      try {
        m = unpackShm(msg as ProtocolMessage);
      } catch (err) {
        return void process.emitWarning(`IPC message dropped: ${(err as Error).message}`);
      }
      this.deliver(m);
    });
    this.onClose(() => this.shm.cleanup());
    if (proc === process) {
      proc.on('disconnect', () => this.close('parent disconnected'));
    } else {
      proc.on('exit', (code: number | null, signal: string | null) =>
        this.close(signal ? `process killed by ${signal}` : `process exited with code ${code}`),
      );
    }
  }

  send(msg: ProtocolMessage, transfer?: readonly TransferListItem[]): boolean {
    if (this.closed || !this.proc.connected || !this.proc.send) return false;
    // send() also returns false when its backlog is long although the message is queued, so only the
    // connection state counts. The callback swallows EPIPE after a crash; the exit event reports the death.
    this.proc.send(this.shm.pack(msg, transfer) ?? msg, undefined, undefined, () => {});
    return true;
  }
}

/**
 * comlink's Endpoint over a Channel: its messages travel wrapped as `{ type: 'comlink' }`. `beforeSend`
 * flushes the RpcPeer's outbox, so that e.g. drain()'s answer never overtakes the results it waited for.
 */
export function comlinkEndpoint(channel: Channel, beforeSend?: () => void): Endpoint {
  const listeners = new Map<unknown, (data: unknown) => void>();
  channel.onMessage((msg) => {
    if (msg.type === 'comlink') for (const l of [...listeners.values()]) l(msg.message);
  });
  return {
    postMessage: (message: unknown) => {
      beforeSend?.();
      channel.send({ type: 'comlink', message });
    },
    addEventListener: (_type: string, listener: EventListenerOrEventListenerObject) => {
      listeners.set(listener, (data) => {
        const event = { data } as MessageEvent;
        if (typeof listener === 'function') listener(event);
        else listener.handleEvent(event);
      });
    },
    removeEventListener: (_type: string, listener: EventListenerOrEventListenerObject) => {
      listeners.delete(listener);
    },
  };
}
