/**
 * Writes an async iterable to a raw HTTP response with back-pressure (waits for 'drain') and stops
 * pulling from the replica as soon as the client goes away, closing the iterator so the replica's
 * generator is cancelled.
 */
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { RequestScope } from './request-scope.js';

export type StreamFormat = 'sse' | 'ndjson';

export const STREAM_CONTENT_TYPES: Record<StreamFormat, string> = {
  sse: 'text/event-stream; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
};

/** Encoders per format. SSE ends with an `end` event so clients can tell a finished stream from a cut one. */
export const encoders: Record<StreamFormat, { item(v: unknown): string; end(): string; error(e: unknown): string }> = {
  sse: {
    item: (v) => `data: ${JSON.stringify(v ?? null)}\n\n`,
    end: () => 'event: end\ndata: {}\n\n',
    error: (e) => `event: error\ndata: ${JSON.stringify(e)}\n\n`,
  },
  ndjson: {
    item: (v) => `${JSON.stringify(v ?? null)}\n`,
    end: () => '',
    error: (e) => `${JSON.stringify(e)}\n`,
  },
};

/** Writes one chunk; resolves false when the client is gone. */
export async function writeChunk(
  res: ServerResponse,
  chunk: string | Uint8Array,
  scope: RequestScope,
): Promise<boolean> {
  if (res.destroyed || scope.aborted) return false;
  if (chunk.length === 0) return true;
  if (res.write(chunk)) return true;
  // Slow client: wait for the socket to drain, or for the request to end (disconnect, cancel).
  const drained = once(res, 'drain').then(
    () => true,
    () => false,
  );
  const closed = once(res, 'close').then(
    () => false,
    () => false,
  );
  return Promise.race([drained, closed]);
}

/**
 * Pulls items from `iterator` and writes `encode(item)` until it ends or the client leaves.
 * Returns 'done' or 'aborted'; throws what the iterator throws.
 *
 * String chunks are not written one by one: a stream's chunks that arrive in the same turn of the event
 * loop (one engine step's batch, or several batches queued while the proxy was busy) leave in one
 * res.write at the end of the turn (CoalescedWriter). Each write is a syscall plus HTTP chunk framing,
 * ~25 µs under contention: per token that was the proxy's largest cost.
 */
export async function pump(
  iterator: AsyncIterator<unknown>,
  res: ServerResponse,
  scope: RequestScope,
  encode: (item: unknown) => string | Uint8Array,
): Promise<'done' | 'aborted'> {
  const writer = new CoalescedWriter(res, scope);
  try {
    for (;;) {
      if (writer.blocked && !(await writer.blocked)) return 'aborted';
      const next = await scope.race(iterator.next());
      if (next.done) return 'done';
      if (!writer.push(encode(next.value))) return 'aborted';
    }
  } finally {
    // Whatever the outcome, what the client was sent before it stays sent (an in-band error, the last chunks).
    writer.flush();
  }
}

/** Writers with chunks held for the end of this turn, flushed by one setImmediate for all streams. */
let dirty: CoalescedWriter[] = [];

function flushDirty(): void {
  const writers = dirty;
  dirty = [];
  for (const w of writers) w.flush();
}

/** One stream's pending string chunks, written together at the end of the turn (see pump). */
class CoalescedWriter {
  private pending = '';
  private queued = false;
  /** Set when a write hit the socket's high-water mark: resolves true on 'drain', false on close. */
  blocked: Promise<boolean> | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly scope: RequestScope,
  ) {}

  /** Holds `chunk` for the end of the turn; false when the client is gone. */
  push(chunk: string | Uint8Array): boolean {
    if (this.res.destroyed || this.scope.aborted) return false;
    if (chunk.length === 0) return true;
    if (typeof chunk !== 'string') {
      // Bytes keep their order behind the strings held before them, and leave at once.
      this.flush();
      this.write(chunk);
      return true;
    }
    this.pending += chunk;
    if (!this.queued) {
      this.queued = true;
      if (dirty.push(this) === 1) setImmediate(flushDirty);
    }
    return true;
  }

  /** Writes what is held now (the turn's end, the stream's end, or before bytes). */
  flush(): void {
    this.queued = false;
    const chunk = this.pending;
    if (chunk.length === 0) return;
    this.pending = '';
    // Runs from setImmediate too, outside the pump: a response closed meanwhile is left alone.
    if (this.res.destroyed || this.res.writableEnded) return;
    this.write(chunk);
  }

  private write(chunk: string | Uint8Array): void {
    if (this.res.write(chunk) || this.blocked) return;
    // Slow client: the pump pulls nothing more until the socket drains, or stops if the request ends.
    const drained = once(this.res, 'drain').then(
      () => true,
      () => false,
    );
    const closed = once(this.res, 'close').then(
      () => false,
      () => false,
    );
    this.blocked = Promise.race([drained, closed]).then((ok) => {
      this.blocked = undefined;
      return ok;
    });
  }
}

/** Closes the replica-side generator without waiting on it: the client is already gone. */
export function closeIterator(iterator: AsyncIterator<unknown> | undefined): void {
  if (!iterator?.return) return;
  try {
    void Promise.resolve(iterator.return(undefined)).catch(() => {});
  } catch {
    // A transport that already tore the stream down may throw synchronously; nothing is left to cancel.
  }
}
