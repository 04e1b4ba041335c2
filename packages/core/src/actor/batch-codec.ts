/**
 * The packed form of a batch of protocol messages (PackedBatchMessage): string stream items joined into
 * one string with their end offsets, other messages kept aside with their positions. Outbox encodes,
 * the receiving side (rpc-peer.ts, channel.ts) decodes on arrival.
 */
import type { PackedBatchMessage, ProtocolMessage } from './protocol.js';

/** One window's messages as one channel message: packed when it carries string stream items. */
export function encodeBatch(pending: readonly { msg: ProtocolMessage }[]): ProtocolMessage | PackedBatchMessage {
  const ids: number[] = [];
  const ends: number[] = [];
  const others: ProtocolMessage[] = [];
  const at: number[] = [];
  let text = '';
  for (let i = 0; i < pending.length; i++) {
    const msg = pending[i]!.msg;
    if (msg.type === 'stream-item' && typeof msg.value === 'string') {
      ids.push(msg.id);
      text += msg.value;
      ends.push(text.length);
    } else {
      others.push(msg);
      at.push(i);
    }
  }
  if (ids.length === 0) return { type: 'batch', messages: others };
  return { type: 'packed-batch', ids, ends, text, others, at };
}

/** The batch a PackedBatchMessage was made from (channel.ts calls this on arrival). */
export function decodeBatch(packed: PackedBatchMessage): ProtocolMessage {
  const { ids, ends, text, others, at } = packed;
  const messages: ProtocolMessage[] = new Array(ids.length + others.length);
  let k = 0;
  let o = 0;
  let start = 0;
  for (let i = 0; i < messages.length; i++) {
    if (o < at.length && at[o] === i) {
      messages[i] = others[o++]!;
      continue;
    }
    const end = ends[k]!;
    messages[i] = { type: 'stream-item', id: ids[k++]!, value: text.slice(start, end) };
    start = end;
  }
  return { type: 'batch', messages };
}
