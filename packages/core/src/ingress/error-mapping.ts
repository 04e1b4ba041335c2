/**
 * How errors leave the proxies: one place maps a thrown value to an HTTP status, a gRPC status code and
 * the JSON body `{ error: { code, message } }`.
 *
 * Errors are recognised by shape (`code` + `httpStatus`), not by `instanceof`, because the runtime rebuilds
 * errors that crossed a thread or process boundary and a user module may load its own copy of errors.ts.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';

export interface MappedError {
  httpStatus: number;
  code: string;
  message: string;
  /** Seconds a client should wait before retrying (back-pressure, draining). */
  retryAfterS?: number;
}

const GRPC_CODES: Record<string, GrpcStatus> = {
  BAD_REQUEST: GrpcStatus.INVALID_ARGUMENT,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  FORBIDDEN: GrpcStatus.PERMISSION_DENIED,
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  REQUEST_TIMEOUT: GrpcStatus.DEADLINE_EXCEEDED,
  PAYLOAD_TOO_LARGE: GrpcStatus.RESOURCE_EXHAUSTED,
  BACK_PRESSURE: GrpcStatus.RESOURCE_EXHAUSTED,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  ACTOR_DIED: GrpcStatus.UNAVAILABLE,
  CANCELLED: GrpcStatus.CANCELLED,
  DEPLOYMENT_CONFIG: GrpcStatus.FAILED_PRECONDITION,
  USER_ERROR: GrpcStatus.UNKNOWN,
  INTERNAL: GrpcStatus.INTERNAL,
};

/** Default Retry-After when a BackPressureError carries no `data.retryAfterS`. */
const DEFAULT_RETRY_AFTER_S = 1;

export function mapError(err: unknown): MappedError {
  if (isTypedError(err)) {
    const mapped: MappedError = { httpStatus: err.httpStatus, code: err.code, message: err.message };
    if (err.code === 'BACK_PRESSURE' || err.code === 'UNAVAILABLE') {
      const hinted = Number(err.data?.retryAfterS);
      mapped.retryAfterS = Number.isFinite(hinted) && hinted > 0 ? Math.ceil(hinted) : DEFAULT_RETRY_AFTER_S;
    }
    return mapped;
  }
  const message = err instanceof Error ? err.message : String(err);
  return { httpStatus: 500, code: 'INTERNAL', message };
}

export function grpcStatusOf(code: string): GrpcStatus {
  return GRPC_CODES[code] ?? GrpcStatus.INTERNAL;
}

export function errorBody(mapped: MappedError): { error: { code: string; message: string } } {
  return { error: { code: mapped.code, message: mapped.message } };
}

interface TypedErrorShape {
  code: string;
  httpStatus: number;
  message: string;
  data?: Record<string, unknown>;
}

function isTypedError(err: unknown): err is TypedErrorShape {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as Partial<TypedErrorShape>;
  return typeof e.code === 'string' && typeof e.httpStatus === 'number' && typeof e.message === 'string';
}
