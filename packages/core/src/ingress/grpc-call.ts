/**
 * The plumbing every gRPC handler shares: the key check (`authorization` metadata, ingress-keys.ts),
 * request id, deadline and cancellation (one RequestScope whose signal goes down in CallOptions), metrics,
 * and mapping errors to gRPC status codes.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import {
  Metadata,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  type ServiceError,
} from '@grpc/grpc-js';
import { UnavailableError } from '../errors.js';
import type { FlotillaMetrics, RequestLabels } from '../observability/metrics.js';
import { acceptRequestId } from './call-payload.js';
import { grpcStatusOf, mapError } from './error-mapping.js';
import type { IngressTarget } from './ingress-target.js';
import type { Access, KeyRing } from './ingress-keys.js';
import type { RequestAuth } from '../contract/routes.js';
import { RequestScope } from './request-scope.js';
import { modelIdFromMetadata } from './multiplex-header.js';
import { closeIterator } from './stream-writer.js';

export interface GrpcContext {
  target: IngressTarget;
  metrics: FlotillaMetrics;
  isDraining(): boolean;
  /** The proxy's keys (none: nothing is checked). */
  keys: KeyRing;
}

/** What a call needs (default: an API key) and where else its key may travel. */
export interface GrpcCallNeeds {
  access?: Access;
  /**
   * The key carried in the request message itself (e.g. llm.proto's `api_key`), used when the call has no
   * `authorization` metadata. Default: none.
   */
  keyInRequest?: (request: unknown) => string | undefined;
  /** The client's own request id (Serve's `request_id` field), else the metadata's. */
  requestId?: string;
}

/**
 * The key check for one call: `authorization: Bearer KEY` metadata, else the request's own key field.
 * Returns who was let in (undefined without keys); throws UnauthenticatedError / ForbiddenError.
 */
export function authorizeCall(
  keys: KeyRing,
  call: { metadata: Metadata; request?: unknown },
  what: string,
  needs: GrpcCallNeeds = {},
): RequestAuth | undefined {
  if (!keys.enabled) return undefined;
  const fromMetadata = call.metadata.get('authorization')[0];
  let authorization = typeof fromMetadata === 'string' ? fromMetadata : undefined;
  if (!authorization && needs.keyInRequest) {
    const key = needs.keyInRequest(call.request);
    if (key) authorization = `Bearer ${key}`;
  }
  const verdict = keys.check(authorization, needs.access ?? 'app', what);
  if (!verdict.ok) throw verdict.error;
  return verdict.auth;
}

/** The address part of a grpc-js peer ('127.0.0.1:50412', '[::1]:50412', 'ipv4:10.0.0.1:1'). */
export function peerAddress(peer: string): string {
  const m = /^(?:ipv[46]:)?\[?([^\]]*?)\]?(?::\d+)?$/.exec(peer);
  return m?.[1] || peer;
}

type AnyCall = ServerUnaryCall<any, any> | ServerWritableStream<any, any>;

/** Labels filled in by the handler as it learns them (app, deployment, method). */
export type MutableLabels = Omit<RequestLabels, 'protocol'>;

export function openScope(call: AnyCall, givenId?: string): RequestScope {
  const fromMetadata = call.metadata.get('x-request-id')[0];
  const requestId = acceptRequestId(
    givenId || (typeof fromMetadata === 'string' ? fromMetadata : undefined),
    randomUUID,
  );
  const deadline = call.getDeadline();
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  const timeoutMs = Number.isFinite(deadlineMs) ? Math.max(1, deadlineMs - Date.now()) : undefined;
  const scope = new RequestScope(requestId, timeoutMs);
  call.on('cancelled', () => scope.abort('disconnect'));
  const md = new Metadata();
  md.set('x-request-id', requestId);
  call.sendMetadata(md);
  return scope;
}

export async function runUnary(
  ctx: GrpcContext,
  call: ServerUnaryCall<any, any>,
  callback: sendUnaryData<any>,
  labels: MutableLabels,
  invoke: (scope: RequestScope, auth: RequestAuth | undefined) => Promise<unknown>,
  needs: GrpcCallNeeds = {},
): Promise<void> {
  const scope = openScope(call, needs.requestId);
  const finish = ctx.metrics.startRequest(liveLabels(labels));
  try {
    const auth = authorizeCall(ctx.keys, call, labels.route, needs);
    if (ctx.isDraining()) throw drainingError();
    scope.setMultiplexedModelId(modelIdFromMetadata(call.metadata));
    const reply = await scope.race(invoke(scope, auth));
    callback(null, reply);
    finish('OK');
  } catch (err) {
    const status = toServiceError(scope.aborted ? scope.reason : err);
    callback(status);
    finish(String(status.code), mapError(err).code);
  } finally {
    scope.dispose();
  }
}

export async function runStream(
  ctx: GrpcContext,
  call: ServerWritableStream<any, any>,
  labels: MutableLabels,
  open: (scope: RequestScope, auth: RequestAuth | undefined) => AsyncIterable<unknown>,
  encode: (item: unknown, scope: RequestScope) => unknown,
  needs: GrpcCallNeeds = {},
): Promise<void> {
  const scope = openScope(call, needs.requestId);
  const finish = ctx.metrics.startRequest(liveLabels(labels));
  let iterator: AsyncIterator<unknown> | undefined;
  try {
    const auth = authorizeCall(ctx.keys, call, labels.route, needs);
    if (ctx.isDraining()) throw drainingError();
    scope.setMultiplexedModelId(modelIdFromMetadata(call.metadata));
    iterator = open(scope, auth)[Symbol.asyncIterator]();
    // Unlike HTTP's proxy timeout, a gRPC deadline is the client's own bound on the whole call: keep it.
    for (;;) {
      const next = await scope.race(iterator.next());
      if (next.done) break;
      if (!call.write(encode(next.value, scope))) await Promise.race([once(call, 'drain'), once(call, 'cancelled')]);
      if (scope.aborted) throw scope.reason;
    }
    call.end();
    finish('OK');
  } catch (err) {
    closeIterator(iterator);
    const status = toServiceError(scope.aborted ? scope.reason : err);
    if (!scope.aborted || scope.cause === 'timeout') call.emit('error', status);
    finish(String(status.code), mapError(err).code);
  } finally {
    scope.dispose();
  }
}

export function toServiceError(err: unknown): ServiceError {
  const mapped = mapError(err);
  const metadata = new Metadata();
  metadata.set('flotilla-error-code', mapped.code);
  if (mapped.retryAfterS !== undefined) metadata.set('retry-after', String(mapped.retryAfterS));
  const error = new Error(mapped.message) as ServiceError;
  return Object.assign(error, {
    code: grpcStatusOf(mapped.code, mapped.httpStatus),
    details: mapped.message,
    metadata,
  });
}

function drainingError(): UnavailableError {
  return new UnavailableError('The server is shutting down; retry against another instance.', { retryAfterS: 1 });
}

/** Reads labels at finish time, after the handler resolved the app and method. */
function liveLabels(labels: MutableLabels): RequestLabels {
  return {
    protocol: 'grpc',
    get app() {
      return labels.app;
    },
    get deployment() {
      return labels.deployment;
    },
    get route() {
      return labels.route;
    },
    get method() {
      return labels.method;
    },
  };
}
