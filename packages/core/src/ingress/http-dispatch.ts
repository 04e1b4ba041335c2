/**
 * The HTTP proxy's request path for applications: find the route, open a RequestScope, call the ingress
 * deployment through its handle, and write JSON, SSE or NDJSON back. Raw-HTTP deployments go to http-raw.ts.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { NotFoundError, UnavailableError, BadRequestError } from '../errors.js';
import type { FlotillaMetrics } from '../observability/metrics.js';
import { parseJsonPayload, toCallArgs } from './call-payload.js';
import { errorBody, mapError } from './error-mapping.js';
import { dispatchRaw } from './http-raw.js';
import type { CallContext } from './call-context.js';
import type { IngressTarget } from './ingress-target.js';
import type { RouteInfo } from '../contract/routes.js';
import type { DeploymentHandle } from '../handle.js';
import { RequestScope } from './request-scope.js';
import { modelIdFromHeaders } from './multiplex-header.js';
import { matchRoute } from './route-table.js';
import { STREAM_CONTENT_TYPES, closeIterator, encoders, pump, writeChunk, type StreamFormat } from './stream-writer.js';

export interface DispatchContext {
  target: IngressTarget;
  metrics: FlotillaMetrics;
  /** Proxy request timeout in ms (0 or Infinity: none). */
  requestTimeoutMs: number;
  isDraining(): boolean;
  onRequestStart(): void;
  onRequestEnd(): void;
  /** Handles by app and ingress deployment, so that a request does not build one (see handleFor). */
  handles: Map<string, DeploymentHandle>;
}

export async function dispatch(ctx: DispatchContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const started = performance.now();
  const url = request.url;
  const query = url.indexOf('?');
  const path = query < 0 ? url : url.slice(0, query);
  const draining = ctx.isDraining();
  const match = draining ? undefined : matchRoute(ctx.target.routes(), path);
  const route = match?.route;
  // The method label: known once the route and the path below it are checked.
  let method = route?.rawHttp ? 'handleHttp' : '';
  const scope = new RequestScope(request.id, ctx.requestTimeoutMs);
  ctx.metrics.requestStarted('http');
  const onClose = (): void => {
    if (!reply.raw.writableFinished) scope.abort('disconnect');
  };
  reply.raw.on('close', onClose);
  ctx.onRequestStart();
  let errorCode: string | undefined;
  try {
    if (draining)
      throw new UnavailableError('The server is shutting down; retry against another instance.', { retryAfterS: 1 });
    if (!match) throw notFoundRoute(ctx.target.routes(), path);
    scope.setMultiplexedModelId(modelIdFromHeaders(request.headers));
    const call: CallContext = {
      request,
      reply,
      target: ctx.target,
      route: match.route,
      rest: match.rest,
      scope,
      handle: handleFor(ctx, match.route),
    };
    if (match.route.rawHttp) {
      await dispatchRaw(call);
    } else {
      method = methodFor(match.route, match.rest);
      await dispatchMethod(call, method);
    }
  } catch (err) {
    errorCode = sendError(reply, scope, err, ctx.isDraining());
  } finally {
    scope.dispose();
    reply.raw.off('close', onClose);
    ctx.onRequestEnd();
    ctx.metrics.requestFinished(
      {
        app: route?.app ?? '',
        deployment: route?.ingress ?? '',
        route: route?.routePrefix ?? '',
        method,
        protocol: 'http',
      },
      scope.cause === 'disconnect' ? '499' : String(reply.raw.statusCode),
      (performance.now() - started) / 1000,
      errorCode,
    );
  }
}

/**
 * The handle of a route's ingress deployment, built once per (app, deployment): building one per request
 * (a Proxy and its closures) showed in the proxy's profile. A handle finds its replicas at call time, so
 * a cached one stays right while the app keeps its name and ingress.
 */
function handleFor(ctx: DispatchContext, route: RouteInfo): DeploymentHandle {
  const key = `${route.app}\u0000${route.ingress}`;
  let handle = ctx.handles.get(key);
  if (!handle) {
    handle = ctx.target.getHandle(route.app);
    if (ctx.handles.size >= 1024) ctx.handles.clear();
    ctx.handles.set(key, handle);
  }
  return handle;
}

async function dispatchMethod(call: CallContext, method: string): Promise<void> {
  const { request } = call;
  if (request.method !== 'POST' && request.method !== 'GET') {
    throw new BadRequestError(
      `${request.method} is not supported on ${request.url}; call methods with POST and a JSON body.`,
    );
  }
  const args = toCallArgs(parseJsonPayload(bodyText(request.body)));
  if (call.route.methods[method] === 'stream') await callStream(call, method, args);
  else await callUnary(call, method, args);
}

async function callUnary(call: CallContext, method: string, args: unknown[]): Promise<void> {
  const { scope, reply } = call;
  const result = await scope.race(call.handle.remote(method, args, scope.callOptions));
  await reply
    .code(200)
    .header('content-type', 'application/json; charset=utf-8')
    .send(JSON.stringify(result ?? null));
}

async function callStream(call: CallContext, method: string, args: unknown[]): Promise<void> {
  const { request, reply, scope } = call;
  const format: StreamFormat = String(request.headers.accept ?? '').includes('text/event-stream') ? 'sse' : 'ndjson';
  const encoder = encoders[format];
  const iterable = call.handle.remoteStream(method, args, scope.callOptions);
  const iterator: AsyncIterator<unknown> = iterable[Symbol.asyncIterator]();
  let headersSent = false;
  try {
    // Wait for the first item before answering so that errors raised at the start (back-pressure, bad
    // arguments) still get a proper status code instead of a 200 with an error event.
    const first = await scope.race(iterator.next());
    scope.clearTimeout();
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': STREAM_CONTENT_TYPES[format],
      'cache-control': 'no-cache',
      'x-request-id': scope.requestId,
      'x-accel-buffering': 'no',
    });
    headersSent = true;
    const outcome = first.done ? 'done' : await pumpFrom(first.value, iterator, reply, scope, encoder.item);
    if (outcome === 'done') reply.raw.end(encoder.end());
    else closeIterator(iterator);
  } catch (err) {
    closeIterator(iterator);
    if (!headersSent) throw err;
    // Headers are gone: report the failure in-band, then end the stream.
    if (!reply.raw.destroyed) reply.raw.end(encoder.error(errorBody(mapError(scope.aborted ? scope.reason : err))));
  }
}

async function pumpFrom(
  first: unknown,
  iterator: AsyncIterator<unknown>,
  reply: FastifyReply,
  scope: RequestScope,
  encode: (v: unknown) => string,
): Promise<'done' | 'aborted'> {
  if (!(await writeChunk(reply.raw, encode(first), scope))) return 'aborted';
  return pump(iterator, reply.raw, scope, encode);
}

function methodFor(route: RouteInfo, rest: string): string {
  if (rest === '/' || rest === '') {
    if (route.methods.__call__) return '__call__';
    throw new NotFoundError(
      `Application '${route.app}' has no __call__ method; POST to ${joinPath(route.routePrefix, '<method>')} ` +
        `with one of: ${methodList(route)}.`,
    );
  }
  const name = rest.includes('%') ? decodeURIComponent(rest.slice(1)) : rest.slice(1);
  if (!name.includes('/') && Object.hasOwn(route.methods, name)) return name;
  throw new NotFoundError(
    `Deployment '${route.ingress}' of application '${route.app}' has no method '${name}'; available: ${methodList(route)}.`,
  );
}

function methodList(route: RouteInfo): string {
  const names = Object.keys(route.methods);
  return names.length ? names.join(', ') : '(none)';
}

function notFoundRoute(routes: RouteInfo[], path: string): NotFoundError {
  const prefixes = routes.map((r) => `${r.routePrefix} (${r.app})`).join(', ') || '(no applications running)';
  return new NotFoundError(`No application serves ${path}; routes: ${prefixes}. See GET /-/routes.`);
}

function joinPath(prefix: string, tail: string): string {
  return `${prefix.replace(/\/+$/, '')}/${tail}`;
}

export function bodyText(body: unknown): string | undefined {
  if (body === undefined || body === null) return undefined;
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  return typeof body === 'string' ? body : JSON.stringify(body);
}

/** Answers with the mapped error unless the client is already gone; returns the error code for metrics. */
export function sendError(reply: FastifyReply, scope: RequestScope, err: unknown, draining: boolean): string {
  const mapped = mapError(scope.aborted && scope.cause !== 'cancel' ? scope.reason : err);
  if (scope.cause === 'disconnect' || reply.sent || reply.raw.headersSent || reply.raw.destroyed) return mapped.code;
  reply.code(mapped.httpStatus).header('content-type', 'application/json; charset=utf-8');
  if (mapped.retryAfterS !== undefined && mapped.httpStatus === 503)
    reply.header('retry-after', String(mapped.retryAfterS));
  if (draining) reply.header('connection', 'close');
  void reply.send(JSON.stringify(errorBody(mapped)));
  return mapped.code;
}
