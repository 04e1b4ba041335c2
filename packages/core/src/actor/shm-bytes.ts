/**
 * Large marked byte arrays (transfer.ts) between processes through a shared-memory file instead of the
 * IPC pipe: the sender writes each one once into /dev/shm and sends its path; the receiver reads it
 * back and unlinks it. One write and one read (memory speed) instead of a serialization, a pipe copy
 * in 64 KB pieces and a deserialization. Only arrays at least SHM_MIN_BYTES long whose buffer is on the
 * message's transfer list go this way; where /dev/shm is missing, everything stays on the pipe.
 *
 * Lifecycle: the receiver unlinks a file as soon as it has read it; the sender remembers the files it
 * wrote and unlinks those still there when its channel closes (the receiver died first).
 */
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TransferListItem } from 'node:worker_threads';

export const SHM_MIN_BYTES = 1 << 20;
const SHM_DIR = '/dev/shm';
const PREFIX = 'flotilla-kv-';
const KEY = '__flotillaShm';
const MAX_DEPTH = 4;

let counter = 0;
const haveShm = process.platform === 'linux' && existsSync(SHM_DIR);

interface Placeholder {
  [KEY]: string;
}

/** Files one channel wrote: unlinked on close if the receiver has not taken them. */
export class ShmFiles {
  private written: string[] = [];

  /** `msg` with its large marked arrays moved into files (a new message; the input is not changed), or null when none. */
  pack<T extends object>(msg: T, transfer: readonly TransferListItem[] | undefined): T | null {
    if (!haveShm || !transfer || transfer.length === 0) return null;
    const moved = new Set(transfer);
    let wrote = false;
    const out = replace(msg, 0, (v) => {
      if (!(v instanceof Uint8Array) || v.byteLength < SHM_MIN_BYTES || !moved.has(v.buffer as ArrayBuffer))
        return undefined;
      const file = path.join(SHM_DIR, `${PREFIX}${process.pid}-${++counter}`);
      writeFileSync(file, v);
      this.remember(file);
      wrote = true;
      return { [KEY]: file } satisfies Placeholder;
    }) as T;
    if (!wrote) return null;
    (out as { shm?: boolean }).shm = true;
    return out;
  }

  /** Unlinks what the other side did not take. */
  cleanup(): void {
    for (const f of this.written) safeUnlink(f);
    this.written = [];
  }

  private remember(file: string): void {
    this.written.push(file);
    if (this.written.length > 64) this.written = this.written.filter((f) => existsSync(f));
  }
}

/** A received message with its placeholders read back (and their files unlinked); others as they are. */
export function unpackShm<T>(msg: T): T {
  if (!(msg as { shm?: boolean } | null)?.shm) return msg;
  delete (msg as { shm?: boolean }).shm;
  return replace(msg, 0, (v) => {
    if (!isPlaceholder(v)) return undefined;
    const file = v[KEY];
    // Only files of this scheme: a message cannot make the receiver read or delete anything else.
    if (path.dirname(file) !== SHM_DIR || !path.basename(file).startsWith(PREFIX))
      throw new Error(`refusing shared-memory path ${file}`);
    const b = readFileSync(file);
    safeUnlink(file);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }) as T;
}

/** Copy of `v` with fn's replacements (fn returns undefined to keep a value), through plain objects and arrays. */
function replace(v: unknown, depth: number, fn: (v: unknown) => unknown): unknown {
  const r = fn(v);
  if (r !== undefined) return r;
  if (depth >= MAX_DEPTH || typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) {
    let out: unknown[] | null = null;
    v.forEach((x, i) => {
      const y = replace(x, depth + 1, fn);
      if (y !== x) (out ??= [...v])[i] = y;
    });
    return out ?? v;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return v;
  let out: Record<string, unknown> | null = null;
  for (const [k, x] of Object.entries(v)) {
    const y = replace(x, depth + 1, fn);
    if (y !== x) (out ??= { ...(v as Record<string, unknown>) })[k] = y;
  }
  return out ?? v;
}

function isPlaceholder(v: unknown): v is Placeholder {
  return typeof v === 'object' && v !== null && typeof (v as Placeholder)[KEY] === 'string';
}

function safeUnlink(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already taken by the receiver
  }
}
