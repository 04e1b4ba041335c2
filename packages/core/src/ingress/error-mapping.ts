/**
 * How errors leave the proxies: one place maps a thrown value to an HTTP status, a gRPC status code and
 * the JSON body `{ error: { code, message } }`.
 *
 * Errors are recognised by shape (`code` + `httpStatus`), not by `instanceof`, because the runtime rebuilds
 * errors that crossed a thread or process boundary and a user module may load its own copy of errors.ts.
 * Other packages' registered errors (the engine's, the LLM deployments') carry a string `code` and a
 * numeric `status` instead: they keep their code, and their status picks the HTTP and gRPC answer.
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
  if (isPackageError(err)) return { httpStatus: err.status, code: err.code, message: err.message };
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

const GRPC_BY_HTTP: Record<number, GrpcStatus> = {
  400: GrpcStatus.INVALID_ARGUMENT,
  401: GrpcStatus.UNAUTHENTICATED,
  403: GrpcStatus.PERMISSION_DENIED,
  404: GrpcStatus.NOT_FOUND,
  408: GrpcStatus.DEADLINE_EXCEEDED,
  409: GrpcStatus.ALREADY_EXISTS,
  413: GrpcStatus.RESOURCE_EXHAUSTED,
  422: GrpcStatus.INVALID_ARGUMENT,
  429: GrpcStatus.RESOURCE_EXHAUSTED,
  503: GrpcStatus.UNAVAILABLE,
};

/** The gRPC status for an error code (core's codes by name; others by their HTTP status). */
export function grpcStatusOf(code: string, httpStatus?: number): GrpcStatus {
  return GRPC_CODES[code] ?? (httpStatus !== undefined ? GRPC_BY_HTTP[httpStatus] : undefined) ?? GrpcStatus.INTERNAL;
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

/** Another package's error: a string code (not one of core's) and an HTTP-like status. */
function isPackageError(err: unknown): err is { code: string; status: number; message: string } {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; status?: unknown; message?: unknown; httpStatus?: unknown };
  return (
    typeof e.code === 'string' &&
    typeof e.httpStatus !== 'number' &&
    typeof e.status === 'number' &&
    e.status >= 400 &&
    e.status <= 599 &&
    typeof e.message === 'string'
  );
}

function isTypedError(err: unknown): err is TypedErrorShape {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as Partial<TypedErrorShape>;
  return typeof e.code === 'string' && typeof e.httpStatus === 'number' && typeof e.message === 'string';
}
