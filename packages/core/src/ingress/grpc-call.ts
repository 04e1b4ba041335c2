/**
 * The plumbing every gRPC handler shares: request id, deadline and cancellation (one RequestScope whose
 * signal goes down in CallOptions), metrics, and mapping errors to gRPC status codes.
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
import { RequestScope } from './request-scope.js';
import { closeIterator } from './stream-writer.js';

export interface GrpcContext {
  target: IngressTarget;
  metrics: FlotillaMetrics;
  isDraining(): boolean;
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
  invoke: (scope: RequestScope) => Promise<unknown>,
  requestId?: string,
): Promise<void> {
  const scope = openScope(call, requestId);
  const finish = ctx.metrics.startRequest(liveLabels(labels));
  try {
    if (ctx.isDraining()) throw drainingError();
    const reply = await scope.race(invoke(scope));
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
  open: (scope: RequestScope) => AsyncIterable<unknown>,
  encode: (item: unknown, scope: RequestScope) => unknown,
  requestId?: string,
): Promise<void> {
  const scope = openScope(call, requestId);
  const finish = ctx.metrics.startRequest(liveLabels(labels));
  let iterator: AsyncIterator<unknown> | undefined;
  try {
    if (ctx.isDraining()) throw drainingError();
    iterator = open(scope)[Symbol.asyncIterator]();
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
  return Object.assign(error, { code: grpcStatusOf(mapped.code), details: mapped.message, metadata });
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
