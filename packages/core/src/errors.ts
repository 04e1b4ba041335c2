/**
 * Typed errors of the core runtime. Each has a stable `code` and the HTTP status a proxy answers with.
 * Errors cross thread/process/network boundaries as { name, code, message, stack, data } and are rebuilt
 * as the same class by `fromWire` (see actor/protocol.ts).
 */
export class FlotillaError extends Error {
  readonly code: string = 'INTERNAL';
  readonly httpStatus: number = 500;
  /** Extra machine-readable detail (e.g. retryAfterS, the parameter at fault). */
  data?: Record<string, unknown>;
  constructor(message: string, data?: Record<string, unknown>) {
    super(message);
    this.name = new.target.name;
    if (data) this.data = data;
  }
}

/** A request body, argument or option is malformed. */
export class BadRequestError extends FlotillaError {
  override readonly code = 'BAD_REQUEST';
  override readonly httpStatus = 400;
}
/** No such application, deployment, route or method. */
export class NotFoundError extends FlotillaError {
  override readonly code = 'NOT_FOUND';
  override readonly httpStatus = 404;
}
/** The request took longer than the proxy's request timeout. */
export class RequestTimeoutError extends FlotillaError {
  override readonly code = 'REQUEST_TIMEOUT';
  override readonly httpStatus = 408;
}
/** Body larger than the configured limit. */
export class PayloadTooLargeError extends FlotillaError {
  override readonly code = 'PAYLOAD_TOO_LARGE';
  override readonly httpStatus = 413;
}
/** Too many requests queued in this caller (maxQueuedRequests); retry later. data.retryAfterS. */
export class BackPressureError extends FlotillaError {
  override readonly code = 'BACK_PRESSURE';
  override readonly httpStatus = 503;
}
/** A deployment has no healthy replica, or the instance is shutting down. */
export class UnavailableError extends FlotillaError {
  override readonly code = 'UNAVAILABLE';
  override readonly httpStatus = 503;
}
/** The caller's credentials (an API key) are missing or wrong. */
export class UnauthenticatedError extends FlotillaError {
  override readonly code = 'UNAUTHENTICATED';
  override readonly httpStatus = 401;
}
/** The caller cancelled (client disconnect, AbortSignal, breaking out of a stream). */
export class RequestCancelledError extends FlotillaError {
/** The caller's key is valid but may not do this (e.g. an API key on an admin route). */
export class ForbiddenError extends FlotillaError {
  override readonly code = 'FORBIDDEN';
  override readonly httpStatus = 403;
}
  override readonly code = 'CANCELLED';
  override readonly httpStatus = 499;
}
/** The replica serving a request died (thread exit, process crash) before answering. */
export class ActorDiedError extends FlotillaError {
  override readonly code = 'ACTOR_DIED';
  override readonly httpStatus = 503;
}
/** The user's module, class or options are broken (bad export, constructor threw, bad option value). */
export class DeploymentConfigError extends FlotillaError {
  override readonly code = 'DEPLOYMENT_CONFIG';
  override readonly httpStatus = 500;
}
/** User code threw; the original name/message/stack are kept. */
export class UserCodeError extends FlotillaError {
  override readonly code = 'USER_ERROR';
  override readonly httpStatus = 500;
}

/** A cluster head or agent cannot be reached, refuses to talk (protocol version), or lost its peer. */
export class ClusterError extends FlotillaError {
  override readonly code = 'CLUSTER';
  override readonly httpStatus = 503;
}

export const errorClasses = {
  FlotillaError,
  BadRequestError,
  NotFoundError,
  RequestTimeoutError,
  PayloadTooLargeError,
  BackPressureError,
  UnavailableError,
  UnauthenticatedError,
  RequestCancelledError,
  ActorDiedError,
  ForbiddenError,
  DeploymentConfigError,
  UserCodeError,
  ClusterError,
} as const;
