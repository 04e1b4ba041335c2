/**
 * A Channel over a gRPC bidirectional stream of ActorFrames (protos/cluster.proto): the head's side of a
 * remote actor, and the agent's side of the same stream. Messages travel as v8.serialize bytes, the
 * structured-clone format of process replicas' IPC, so a remote hop carries what a local one does.
 *
 * The head creates the channel before the agent has opened the stream (StartActor is asynchronous):
 * until attach(), sends are buffered in order.
 */
import v8 from 'node:v8';
import { BaseChannel, type Channel } from './channel.js';
import type { ProtocolMessage } from './protocol.js';

/** One ActorFrame as @grpc/proto-loader gives it (bytes as Buffer, defaults filled). */
export interface ActorFrame {
  message?: Buffer | Uint8Array;
  close_reason?: string;
  /** The message goes on in the next frame (chunked). */
  more?: boolean;
}

/** Largest message bytes in one frame: under gRPC's default 4 MiB limit on a received message. */
export const FRAME_CHUNK_BYTES = 1 << 20;

/** The part of a grpc-js duplex call (server or client side) the channel needs. */
export interface FrameStream {
  write(frame: ActorFrame): boolean;
  end(): void;
  on(event: 'data', listener: (frame: ActorFrame) => void): unknown;
  on(event: 'end' | 'cancelled' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

export class StreamChannel extends BaseChannel implements Channel {
  private stream: FrameStream | undefined;
  private pending: ActorFrame[] = [];
  private ended = false;
  /** Chunks of a message being received (frames with `more`). */
  private partial: Uint8Array[] = [];

  /** `label` prefixes close reasons, e.g. 'node n1' → "node n1: connection lost (…)". */
  constructor(
    private readonly label: string,
    stream?: FrameStream,
  ) {
    super();
    if (stream) this.attach(stream);
  }

  get attached(): boolean {
    return this.stream !== undefined;
  }

  /** Connects the stream and flushes what was sent before; a closed channel ends the stream at once. */
  attach(stream: FrameStream): void {
    if (this.stream) throw new Error('StreamChannel: already attached');
    this.stream = stream;
    stream.on('data', (frame) => this.onFrame(frame));
    stream.on('end', () => this.close(`${this.label}: stream ended`));
    stream.on('cancelled', () => this.close(`${this.label}: connection lost (stream cancelled)`));
    stream.on('close', () => this.close(`${this.label}: connection closed`));
    stream.on('error', (err) => this.close(`${this.label}: connection lost (${err.message})`));
    if (this.closed) return this.endStream();
    for (const frame of this.pending) stream.write(frame);
    this.pending = [];
  }

  /** Throws like IPC's send when the message cannot be cloned (RpcPeer turns that into BadRequestError). */
  send(msg: ProtocolMessage): boolean {
    if (this.closed) return false;
    const frames = chunk(v8.serialize(msg));
    if (!this.stream) this.pending.push(...frames);
    else if (!safely(() => frames.forEach((f) => this.stream!.write(f)))) return false;
    return true;
  }

  /** Tells the other side why (close_reason), ends the stream and closes this side with `reason`. */
  shutdown(reason: string): void {
    if (this.closed) return;
    if (this.stream && !this.ended) safely(() => this.stream!.write({ close_reason: reason }));
    this.close(reason);
  }

  /** However the channel closes, our half of the stream ends too (grpc-js would hold the call open). */
  protected override close(reason: string): void {
    if (this.closed) return;
    this.pending = [];
    super.close(reason);
    this.endStream();
  }

  private endStream(): void {
    if (this.ended || !this.stream) return;
    this.ended = true;
    safely(() => this.stream!.end());
  }

  private onFrame(frame: ActorFrame): void {
    if (frame.close_reason) return this.close(frame.close_reason);
    if (!frame.message || frame.message.length === 0 || this.closed) return;
    if (frame.more) {
      this.partial.push(frame.message);
      return;
    }
    let bytes = frame.message;
    if (this.partial.length > 0) {
      bytes = Buffer.concat([...this.partial, bytes]);
      this.partial = [];
    }
    let msg: unknown;
    try {
      msg = v8.deserialize(bytes);
    } catch {
      msg = undefined;
    }
    // A frame that is no protocol message ends the stream (with the reason); it must not throw out of
    // the stream's 'data' event, which would take the whole process down.
    if (typeof msg !== 'object' || msg === null) return this.shutdown(`${this.label}: malformed frame on the stream`);
    this.deliver(msg as ProtocolMessage);
  }
}

/** One message's frames: itself, or chunks of FRAME_CHUNK_BYTES (views, no copy) all but the last with `more`. */
function chunk(message: Buffer): ActorFrame[] {
  if (message.length <= FRAME_CHUNK_BYTES) return [{ message }];
  const frames: ActorFrame[] = [];
  for (let at = 0; at < message.length; at += FRAME_CHUNK_BYTES) {
    const end = Math.min(message.length, at + FRAME_CHUNK_BYTES);
    frames.push(
      end < message.length
        ? { message: message.subarray(at, end), more: true }
        : { message: message.subarray(at, end) },
    );
  }
  return frames;
}

/** Writes to a stream whose peer is gone throw; the stream's own events report the loss. */
function safely(fn: () => void): boolean {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
}
