/**
 * Large binary values across actors without a copy where the transport allows it. A method (or a
 * caller, for arguments) marks what it returns with `transfer(value, buffers)`: between threads the
 * marked ArrayBuffers are moved with the message (postMessage's transfer list: the receiver gets the
 * memory, the sender's views become empty); processes and remote replicas serialize the bytes as they
 * would anyway (IPC, v8 frames; stream-channel.ts cuts large ones into chunks). SharedArrayBuffers need
 * no mark: threads share them as they are.
 *
 * The mark is held in a WeakMap on the value, so it costs nothing for unmarked values and vanishes with
 * them; it is read once, when the value leaves (a relayed value is copied on its next hop).
 */
import type { TransferListItem } from 'node:worker_threads';

const marks = new WeakMap<object, readonly ArrayBuffer[]>();

/**
 * Marks `value` (an object, array or typed array) so that `buffers` move with it when it crosses to
 * another thread. A Uint8Array alone may be passed as `value` with no `buffers`: its own buffer moves.
 * Returns `value`. Do not use the buffers on this side after returning or passing it.
 */
export function transfer<T extends object>(value: T, buffers?: readonly ArrayBuffer[]): T {
  const list = buffers ?? (ArrayBuffer.isView(value) && value.buffer instanceof ArrayBuffer ? [value.buffer] : []);
  if (list.length > 0) marks.set(value, [...new Set(list)]);
  return value;
}

/** The buffers marked on `value`, once (the mark is consumed); undefined when none. */
export function takeTransferList(value: unknown): TransferListItem[] | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const list = marks.get(value);
  if (!list) return undefined;
  marks.delete(value);
  // A buffer already detached (sent elsewhere) cannot move again: postMessage would throw.
  const live = list.filter((b) => b.byteLength > 0 || !isDetached(b));
  return live.length > 0 ? (live as TransferListItem[]) : undefined;
}

/** The transfer list of a call's arguments (each argument may be marked). */
export function takeArgsTransferList(args: readonly unknown[]): TransferListItem[] | undefined {
  let out: TransferListItem[] | undefined;
  for (const a of args) {
    const list = takeTransferList(a);
    if (list) (out ??= []).push(...list);
  }
  return out;
}

function isDetached(b: ArrayBuffer): boolean {
  return (b as { detached?: boolean }).detached === true;
}
