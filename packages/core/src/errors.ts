/**
 * Typed errors of the core runtime. Each has a stable `code` and the HTTP status a proxy answers with.
 * Errors cross thread/process/network boundaries as { name, code, message, stack, data, fields } and are
 * rebuilt as the same class by `errorFromWire` (actor/protocol.ts): core's own classes (`errorClasses`),
 * and every class another package registers with `registerErrorClasses` (the engine's, the LLM
 * deployments'). Anything else arrives as UserCodeError.
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
/** The caller's key is valid but may not do this (e.g. an API key on an admin route). */
export class ForbiddenError extends FlotillaError {
  override readonly code = 'FORBIDDEN';
  override readonly httpStatus = 403;
}
/** The caller cancelled (client disconnect, AbortSignal, breaking out of a stream). */
export class RequestCancelledError extends FlotillaError {
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

/**
 * A `@multiplexed` loader threw loading a model (multiplexed.ts): the request fails, the replica stays
 * healthy, and the next request for the id loads again. data.modelId; data.cause: the loader's error.
 */
export class ModelLoadError extends FlotillaError {
  override readonly code = 'MODEL_LOAD_FAILED';
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
  ForbiddenError,
  RequestCancelledError,
  ActorDiedError,
  DeploymentConfigError,
  UserCodeError,
  ClusterError,
  ModelLoadError,
} as const;

/** An error class the wire registry can rebuild: any Error subclass whose instances carry a string `code`. */
export type WireErrorClass = abstract new (...args: any[]) => Error;

/**
 * Where registered classes live: a Map on globalThis under this registered symbol, so that a package
 * that does not depend on core (the engine) registers without importing it (it writes the same Map;
 * see packages/engine/src/errors.ts), and so that registrations reach core however it was loaded.
 * Core's own classes are not kept there: `errorClasses` always wins for their names.
 */
export const WIRE_ERROR_REGISTRY = Symbol.for('flotilla.wireErrorClasses');

function registry(): Map<string, WireErrorClass> {
  const g = globalThis as { [WIRE_ERROR_REGISTRY]?: Map<string, WireErrorClass> };
  g[WIRE_ERROR_REGISTRY] ??= new Map();
  return g[WIRE_ERROR_REGISTRY];
}

/**
 * Registers error classes by name (the key must be the name instances carry in `err.name`, which is the
 * class name for classes that set `this.name = new.target.name`). Call it at module load of the file
 * that defines the classes, so that every thread or process that can throw or catch them has them. A
 * later registration of the same name replaces the earlier one; core's own names cannot be replaced.
 */
export function registerErrorClasses(classes: Record<string, WireErrorClass>): void {
  const map = registry();
  for (const [name, cls] of Object.entries(classes)) {
    if (Object.hasOwn(errorClasses, name))
      throw new TypeError(`${name} is a core error class and cannot be re-registered`);
    map.set(name, cls);
  }
}

/** The class registered under `name` (core's first), if any. */
export function registeredErrorClass(name: string): WireErrorClass | undefined {
  return (errorClasses as Record<string, WireErrorClass>)[name] ?? registry().get(name);
}
