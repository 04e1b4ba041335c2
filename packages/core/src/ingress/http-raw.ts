/**
 * Raw-HTTP deployments (those defining handleHttp(req)) get the whole request as plain data and answer with
 * an HttpResponseLike, or — when handleHttp is an async generator — a head followed by chunks written as is.
 * This is how protocol adapters such as the OpenAI and TGI endpoints are served.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FlotillaError } from '../errors.js';
import type { CallContext } from './call-context.js';
import { parseJsonPayload } from './call-payload.js';
import { requestAuthOf } from './http-auth.js';
import { exceedsJsonDepth, tooDeepMessage } from './json-depth.js';
import type { HttpRequestLike, HttpResponseLike } from '../contract/routes.js';
import { mapError } from './error-mapping.js';
import { renderStreamError, streamErrorFormatOf } from './stream-error-format.js';
import { closeIterator, pump, writeChunk } from './stream-writer.js';

/**
 * A stream cut by its replica's death (or its node's) before any chunk reached the client is run again,
 * at most this many times: nothing was sent, so the client sees one answer. (The router itself retries a
 * stream that died before yielding its head; this covers the span between the head and the first chunk.)
 */
const MAX_STREAM_RESTARTS = 3;

export async function dispatchRaw(call: CallContext): Promise<void> {
  const req = toRequestLike(call.request, call.rest, call.scope.requestId, call.route.handlesMalformedJson === true);
  const handle = call.handle;
  const { scope } = call;
  const opts = scope.callOptions;
  if (call.route.methods.handleHttp !== 'stream') {
    const response = await scope.race(handle.remote('handleHttp', [req], opts));
    await sendResponse(call.reply, checkHead(response), scope.requestId);
    return;
  }
  for (let restarts = 0; ; restarts++) {
    const iterator: AsyncIterator<unknown> = handle.remoteStream('handleHttp', [req], opts)[Symbol.asyncIterator]();
    let head: HttpResponseLike | undefined;
    let first: IteratorResult<unknown> | { error: unknown };
    try {
      const next = await scope.race(iterator.next());
      if (next.done)
        throw new FlotillaError(`handleHttp of '${call.route.ingress}' ended without yielding a response head.`);
      head = checkHead(next.value);
      scope.clearTimeout();
      // A head that carries a body is the whole response (e.g. a validation error decided before streaming).
      if (head.body !== undefined) {
        await sendResponse(call.reply, head, scope.requestId);
        settleAfterHead(iterator);
        return;
      }
      // The head waits for the first chunk (they leave together): until then the client has nothing, so a
      // replica that dies meanwhile can be replaced without the client seeing two answers.
      first = await scope.race(iterator.next());
    } catch (err) {
      closeIterator(iterator);
      if (restarts < MAX_STREAM_RESTARTS && !scope.aborted && isDeath(err)) continue;
      if (head === undefined || scope.aborted) throw err;
      first = { error: err };
    }
    await streamChunks(call, head, first, iterator);
    return;
  }
}

/** The callee (or its node) went away: ActorDiedError, recognised by code as error-mapping does. */
function isDeath(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'ACTOR_DIED';
}

/**
 * Writes the head and the chunks. A failure after the head (the replica died, its node was lost) is
 * written in the stream's own protocol as the head declares it (stream-error-format.ts), and the response
 * then ends normally; only a format of 'none', or a client already gone, cuts the connection.
 */
async function streamChunks(
  call: CallContext,
  head: HttpResponseLike,
  first: IteratorResult<unknown> | { error: unknown },
  iterator: AsyncIterator<unknown>,
): Promise<void> {
  const { reply, scope } = call;
  reply.hijack();
  reply.raw.writeHead(head.status, {
    'content-type': 'text/plain; charset=utf-8',
    ...lowerKeys(head.headers),
    'x-request-id': scope.requestId,
  });
  try {
    if ('error' in first) throw first.error;
    if (first.done) return void reply.raw.end();
    const outcome = (await writeChunk(reply.raw, encodeChunk(first.value), scope))
      ? await pump(iterator, reply.raw, scope, encodeChunk)
      : 'aborted';
    if (outcome === 'done') reply.raw.end();
    else closeIterator(iterator);
  } catch (err) {
    closeIterator(iterator);
    if (reply.raw.destroyed) return;
    const text = scope.aborted ? null : renderStreamError(streamErrorFormatOf(head), mapError(err));
    if (text === null) reply.raw.destroy(err instanceof Error ? err : undefined);
    else reply.raw.end(text);
  }
}

function encodeChunk(chunk: unknown): string | Uint8Array {
  if (typeof chunk === 'string') return chunk;
  if (chunk instanceof Uint8Array) return chunk;
  return `${JSON.stringify(chunk)}\n`;
}

async function sendResponse(reply: FastifyReply, res: HttpResponseLike, requestId: string): Promise<void> {
  const headers = lowerKeys(res.headers);
  reply.code(res.status).headers(headers).header('x-request-id', requestId);
  const body = res.body;
  if (body === undefined || body === null) return void (await reply.send(''));
  if (typeof body === 'string') {
    if (!headers['content-type']) reply.header('content-type', 'text/plain; charset=utf-8');
    return void (await reply.send(body));
  }
  if (body instanceof Uint8Array) {
    if (!headers['content-type']) reply.header('content-type', 'application/octet-stream');
    return void (await reply.send(Buffer.from(body.buffer, body.byteOffset, body.byteLength)));
  }
  if (!headers['content-type']) reply.header('content-type', 'application/json; charset=utf-8');
  await reply.send(JSON.stringify(body));
}

function checkHead(value: unknown): HttpResponseLike {
  const head = value as HttpResponseLike | undefined;
  if (!head || typeof head !== 'object' || !Number.isInteger(head.status) || head.status < 100 || head.status > 599) {
    throw new FlotillaError(
      `handleHttp must return (or first yield) { status, headers?, body? }; got ${JSON.stringify(value)?.slice(0, 200)}.`,
    );
  }
  return head;
}

/** `passMalformed`: a JSON body that does not parse goes on as text with `bodyError`, instead of a 400 from here. */
export function toRequestLike(
  request: FastifyRequest,
  path: string,
  requestId: string,
  passMalformed = false,
): HttpRequestLike {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(request.headers))
    if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  const query: Record<string, string> = {};
  const search = request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : '';
  for (const [k, v] of new URLSearchParams(search)) query[k] = v;
  const raw = Buffer.isBuffer(request.body) ? request.body.toString('utf8') : undefined;
  const isJson = /[/+]json\b/i.test(headers['content-type'] ?? '');
  let body: unknown = raw === undefined || raw === '' ? undefined : raw;
  let bodyError: string | undefined;
  if (isJson && body !== undefined) {
    if (!passMalformed) body = parseJsonPayload(raw);
    else if (exceedsJsonDepth(raw!)) bodyError = tooDeepMessage();
    else {
      try {
        body = JSON.parse(raw!);
      } catch (err) {
        bodyError = (err as Error).message;
      }
    }
  }
  const req: HttpRequestLike = { method: request.method, path, query, headers, body, requestId, clientIp: request.ip };
  if (bodyError !== undefined) req.bodyError = bodyError;
  // Set by the proxy's key check only (http-auth.ts), never from anything the client sent.
  const { auth, authError } = requestAuthOf(request);
  if (auth) req.auth = auth;
  if (authError !== undefined) req.authError = authError;
  return req;
}

function lowerKeys(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) out[k.toLowerCase()] = String(v);
  return out;
}

/** How long a stream whose head carried the whole response may take to end on its own. */
const SETTLE_MS = 2000;

/**
 * After a head that carried the whole response: let the stream end on its own rather than cancel it at
 * once. A class that yields its head and returns (LLMServer, a guard waiting for its downstream to end)
 * would otherwise see its call cancelled mid-return and counted as a CANCELLED error in the metrics of
 * every request. Anything it yields after the head is dropped; a stream still open after SETTLE_MS is
 * closed.
 */
function settleAfterHead(iterator: AsyncIterator<unknown>): void {
  const timer = setTimeout(() => closeIterator(iterator), SETTLE_MS);
  timer.unref?.();
  void (async () => {
    try {
      const next = await iterator.next();
      if (!next.done) closeIterator(iterator);
    } catch {
      // The stream failed after the response went out: nothing left to tell the client.
    } finally {
      clearTimeout(timer);
    }
  })();
}
