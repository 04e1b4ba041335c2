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
export async function writeChunk(res: ServerResponse, chunk: string | Uint8Array, scope: RequestScope): Promise<boolean> {
  if (res.destroyed || scope.aborted) return false;
  if (chunk.length === 0) return true;
  if (res.write(chunk)) return true;
  // Slow client: wait for the socket to drain, or for the request to end (disconnect, cancel).
  const drained = once(res, 'drain').then(() => true, () => false);
  const closed = once(res, 'close').then(() => false, () => false);
  return Promise.race([drained, closed]);
}

/**
 * Pulls items from `iterator` and writes `encode(item)` until it ends or the client leaves.
 * Returns 'done' or 'aborted'; throws what the iterator throws.
 */
export async function pump(
  iterator: AsyncIterator<unknown>, res: ServerResponse, scope: RequestScope,
  encode: (item: unknown) => string | Uint8Array,
): Promise<'done' | 'aborted'> {
  for (;;) {
    const next = await scope.race(iterator.next());
    if (next.done) return 'done';
    if (!(await writeChunk(res, encode(next.value), scope))) return 'aborted';
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
