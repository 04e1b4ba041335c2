/**
 * A Channel over a local stream socket: the direct link between two replicas when either one is a child
 * process (a MessagePort cannot reach another process). Frames are a 4-byte big-endian length and then
 * v8.serialize(msg), the structured-clone format of process replicas' IPC, so a link carries what IPC
 * does; a value that cannot be serialized throws from send() as it does there.
 *
 * The callee listens (listenForLinks) on an abstract Unix socket on Linux (no file to leave behind),
 * elsewhere on a socket in a directory only its user can enter (a named pipe on Windows), and admits
 * a connection only once its first frame is the callee's token: a random 32 bytes that the callee
 * handed its parent, which gives it only to the callers it links. Nothing from a connection is
 * deserialized before that.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import v8 from 'node:v8';
import { BaseChannel, type Channel } from './channel.js';
import type { ProtocolMessage } from './protocol.js';

const TOKEN_BYTES = 32;
/** A connection that has not shown its token by then is dropped. */
const AUTH_TIMEOUT_MS = 10_000;
/** Larger frames are refused (the connection is closed): a length prefix gone wrong, or abuse. */
const MAX_FRAME = 2 ** 31 - 1;

export class SocketChannel extends BaseChannel implements Channel {
  /** Received bytes not yet delivered, kept as chunks: joined once per frame, not once per chunk. */
  private input: Buffer[] = [];
  private inputBytes = 0;
  /** Bytes the frame at the head of `input` needs (its length prefix included); 4 while unknown. */
  private needBytes = 4;
  /** Set on the accepting side until the peer's first frame matched it. */
  private expected: Buffer | undefined;

  /**
   * `label` prefixes close reasons. `expectToken`: the accepting side's token; until the first frame
   * equals it, nothing is delivered, and any other first frame closes the connection.
   */
  constructor(
    private readonly socket: net.Socket,
    private readonly label: string,
    expectToken?: Buffer,
  ) {
    super();
    this.expected = expectToken;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.close(`${label}: ${err.message}`));
    socket.on('close', () => this.close(`${label}: connection closed`));
    if (expectToken) {
      const timer = setTimeout(() => {
        if (this.expected) this.shutdown(`${label}: no token within ${AUTH_TIMEOUT_MS} ms`);
      }, AUTH_TIMEOUT_MS);
      timer.unref();
      socket.once('close', () => clearTimeout(timer));
    }
  }

  /** Connects to a callee's socket; messages sent before the connection is up wait in the socket. */
  static connect(address: string, token: string, label: string): SocketChannel {
    const socket = net.connect(address);
    const channel = new SocketChannel(socket, label);
    channel.writeFrame(Buffer.from(token, 'hex'));
    return channel;
  }

  send(msg: ProtocolMessage): boolean {
    if (this.closed || this.socket.destroyed) return false;
    this.writeFrame(v8.serialize(msg));
    return true;
  }

  /** Closes the connection; the other side sees it close. */
  shutdown(reason: string): void {
    this.socket.destroy();
    this.close(reason);
  }

  protected override close(reason: string): void {
    if (this.closed) return;
    this.input = [];
    this.inputBytes = 0;
    super.close(reason);
    this.socket.destroy();
  }

  private writeFrame(body: Buffer): void {
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32BE(body.length, 0);
    // One writev for both parts, no copy.
    this.socket.cork();
    this.socket.write(head);
    this.socket.write(body);
    this.socket.uncork();
  }

  // A large frame arrives in many chunks (64 KiB or less each): joining them as they came cost O(n²)
  // copying (a 10 MB KV payload took seconds); now they are joined once, when the frame is complete.
  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.input.push(chunk);
    this.inputBytes += chunk.length;
    if (this.inputBytes < this.needBytes) return;
    let buf = this.input.length === 1 ? this.input[0]! : Buffer.concat(this.input, this.inputBytes);
    this.input = [];
    this.inputBytes = 0;
    this.needBytes = 4;
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      if (this.expected && len !== this.expected.length) return this.shutdown(`${this.label}: bad token`);
      if (len > MAX_FRAME) return this.shutdown(`${this.label}: frame of ${len} bytes refused`);
      if (buf.length < 4 + len) {
        this.needBytes = 4 + len;
        break;
      }
      const frame = buf.subarray(4, 4 + len);
      buf = buf.subarray(4 + len);
      if (this.expected) {
        if (!timingSafeEqual(frame, this.expected)) return this.shutdown(`${this.label}: bad token`);
        this.expected = undefined;
        continue;
      }
      this.deliver(v8.deserialize(frame) as ProtocolMessage);
      if (this.closed) return;
    }
    if (buf.length > 0) {
      this.input.push(buf);
      this.inputBytes = buf.length;
    }
  }
}

/** A callee's listening socket: where callers connect and the token they must show. */
export interface LinkListener {
  address: string;
  /** Hex. */
  token: string;
  close(): void;
}

/** Listens for links; `onChannel` gets each connection (its messages flow once its token checked out). */
export function listenForLinks(label: string, onChannel: (channel: SocketChannel) => void): Promise<LinkListener> {
  const token = randomBytes(TOKEN_BYTES);
  const { address, cleanup } = socketAddress();
  const server = net.createServer((socket) => onChannel(new SocketChannel(socket, label, token)));
  return new Promise((resolve, reject) => {
    server.once('error', (err) => {
      cleanup();
      reject(err);
    });
    server.listen(address, () => {
      server.unref();
      resolve({
        address,
        token: token.toString('hex'),
        close: () => {
          server.close();
          cleanup();
        },
      });
    });
  });
}

function socketAddress(): { address: string; cleanup: () => void } {
  const name = `flotilla-${process.pid}-${randomBytes(8).toString('hex')}`;
  if (process.platform === 'linux') return { address: `\0${name}`, cleanup: () => {} };
  if (process.platform === 'win32') return { address: `\\\\.\\pipe\\${name}`, cleanup: () => {} };
  // mkdtemp creates the directory with mode 0700: only this user can reach the socket inside.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-'));
  return { address: path.join(dir, 's'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
