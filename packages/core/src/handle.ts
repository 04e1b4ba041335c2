/**
 * DeploymentHandle: how callers (proxies, tests, other deployments) reach a deployment.
 *
 * A handle is a thin Proxy over a HandleBackend. In the controller's process the backend is the
 * caller's Router. Inside a replica, handles arrive as plain descriptors in the constructor arguments
 * and are rebuilt over replica/direct-handles.ts: calls go straight to the callee's replicas over
 * direct links (replica sets pushed by the parent), or, where no link serves, to the parent, which
 * routes them through a router kept per calling deployment (the relay).
 */
import { randomUUID } from 'node:crypto';
import { RequestTimeoutError } from './errors.js';
import type { CallOptions } from './contract/routes.js';
import type { HandleTarget } from './actor/protocol.js';
import { Cancellation, abortSourceOf, offAbort, onAbort, type AbortSource } from './actor/cancellation.js';

export type { CallOptions };

/** Where a handle sends calls; requestId is always set, cancel or signal carries timeouts and cancels. */
export interface HandleBackend {
  call(target: HandleTarget, method: string, args: unknown[], opts: ResolvedCallOptions): Promise<unknown>;
  stream(target: HandleTarget, method: string, args: unknown[], opts: ResolvedCallOptions): AsyncIterable<unknown>;
}

export interface ResolvedCallOptions {
  requestId: string;
  /** With `cancel`, a getter that builds cancel's AbortSignal: read `cancel` first (abortSourceOf). */
  signal?: AbortSignal;
  cancel?: Cancellation;
  /** See CallOptions.routingKey; never inherited by nested calls (they go to other deployments). */
  routingKey?: string;
  /** See CallOptions.multiplexedModelId; never inherited by nested calls either. */
  multiplexedModelId?: string;
}

type AnyFn = (...args: any[]) => any;
type MethodKeys<T> = { [K in keyof T]: T[K] extends AnyFn ? (K extends string ? K : never) : never }[keyof T];
type Reserved = 'remote' | 'remoteStream' | 'options' | 'stream' | 'target';

/** `await handle.method(...args)` for every method of T. */
export type UnaryMethods<T> = {
  [K in Exclude<MethodKeys<T>, Reserved>]: T[K] extends (...a: infer A) => infer R
    ? (...a: A) => Promise<Awaited<R>>
    : never;
};

/** `for await (const x of handle.stream.method(...args))` for async generator methods of T. */
export type StreamMethods<T> =
  IsAny<T> extends true
    ? { [method: string]: (...args: any[]) => AsyncIterable<any> }
    : {
        [K in MethodKeys<T>]: T[K] extends (...a: infer A) => AsyncIterable<infer Y>
          ? (...a: A) => AsyncIterable<Y>
          : never;
      };

export interface HandleBase<T> {
  readonly target: HandleTarget;
  remote(method: string, args: unknown[], opts?: CallOptions): Promise<unknown>;
  /** Breaking out of the loop or aborting opts.signal cancels the replica-side generator. */
  remoteStream(method: string, args: unknown[], opts?: CallOptions): AsyncIterable<unknown>;
  /** A handle whose calls carry these options. */
  options(opts: CallOptions): DeploymentHandle<T>;
  readonly stream: StreamMethods<T>;
  /** Plain descriptor; handles cross thread/process boundaries as this. */
  toJSON(): HandleDescriptor;
}

type IsAny<T> = 0 extends 1 & T ? true : false;

/** An untyped handle (DeploymentHandle<any>) accepts any method name and returns Promise<any>. */
export type AnyMethods = { [method: string]: (...args: any[]) => Promise<any> };

export type DeploymentHandle<T = any> = HandleBase<T> & (IsAny<T> extends true ? AnyMethods : UnaryMethods<T>);

const DESCRIPTOR_KEY = '$flotillaHandle';

export interface HandleDescriptor {
  [DESCRIPTOR_KEY]: HandleTarget;
}

export function handleDescriptor(target: HandleTarget): HandleDescriptor {
  return { [DESCRIPTOR_KEY]: { app: target.app, deployment: target.deployment } };
}

export function isHandleDescriptor(value: unknown): value is HandleDescriptor {
  return typeof value === 'object' && value !== null && DESCRIPTOR_KEY in value;
}

/**
 * Fills requestId and folds timeoutMs into the cancellation (aborting with RequestTimeoutError). The
 * caller's own source (cancel or signal) wins over the fallback's (the current request's, in a replica).
 */
export function resolveCallOptions(opts: CallOptions, fallback?: ResolvedCallOptions): ResolvedCallOptions {
  const requestId = opts.requestId ?? fallback?.requestId ?? randomUUID();
  const source = abortSourceOf(opts) ?? (fallback ? abortSourceOf(fallback) : undefined);
  const resolved = withSource(
    requestId,
    opts.timeoutMs === undefined ? source : withTimeout(source, opts.timeoutMs, requestId),
  );
  if (opts.routingKey !== undefined) resolved.routingKey = opts.routingKey;
  if (opts.multiplexedModelId !== undefined) resolved.multiplexedModelId = opts.multiplexedModelId;
  return resolved;
}

function withSource(requestId: string, source: AbortSource | undefined): ResolvedCallOptions {
  if (!(source instanceof Cancellation)) return { requestId, signal: source };
  return {
    requestId,
    cancel: source,
    get signal() {
      return source.signal;
    },
  };
}

/** A Cancellation that aborts when `source` does or after `timeoutMs`, whichever comes first. */
function withTimeout(source: AbortSource | undefined, timeoutMs: number, requestId: string): Cancellation {
  const cancel = new Cancellation();
  const timer = setTimeout(
    () => cancel.abort(new RequestTimeoutError(`request ${requestId} timed out after ${timeoutMs} ms`)),
    timeoutMs,
  );
  timer.unref?.();
  if (source) {
    const follow = () => cancel.abort(source.reason);
    if (source.aborted) follow();
    else onAbort(source, follow);
    cancel.onAbort(() => offAbort(source, follow));
  }
  cancel.onAbort(() => clearTimeout(timer));
  return cancel;
}

/** defaults overridden by opts, copied field by field so that a lazily built `signal` is not read. */
function mergeOptions(defaults: CallOptions, opts: CallOptions | undefined): CallOptions {
  if (opts === undefined) return defaults;
  if (
    defaults.requestId === undefined &&
    defaults.timeoutMs === undefined &&
    defaults.routingKey === undefined &&
    defaults.multiplexedModelId === undefined &&
    abortSourceOf(defaults) === undefined
  )
    return opts;
  const source = abortSourceOf(opts) ?? abortSourceOf(defaults);
  return {
    requestId: opts.requestId ?? defaults.requestId,
    timeoutMs: opts.timeoutMs ?? defaults.timeoutMs,
    routingKey: opts.routingKey ?? defaults.routingKey,
    multiplexedModelId: opts.multiplexedModelId ?? defaults.multiplexedModelId,
    ...(source instanceof Cancellation ? { cancel: source } : { signal: source }),
  };
}

/**
 * Builds the Proxy. `context` supplies defaults per call (inside a replica: the current request's
 * requestId and signal, so nested calls are cancelled with their parent).
 */
export function createHandle<T>(
  target: HandleTarget,
  backend: HandleBackend,
  defaults: CallOptions = {},
  context?: () => ResolvedCallOptions | undefined,
): DeploymentHandle<T> {
  const resolve = (opts?: CallOptions) => resolveCallOptions(mergeOptions(defaults, opts), context?.());
  const base: HandleBase<T> = {
    target,
    remote: (method, args, opts) => backend.call(target, method, args, resolve(opts)),
    remoteStream: (method, args, opts) => backend.stream(target, method, args, resolve(opts)),
    options: (opts) => createHandle<T>(target, backend, mergeOptions(defaults, opts), context),
    stream: new Proxy(
      {},
      {
        get: (_t, prop) =>
          typeof prop === 'string' ? (...args: unknown[]) => backend.stream(target, prop, args, resolve()) : undefined,
      },
    ) as StreamMethods<T>,
    toJSON: () => handleDescriptor(target),
  };
  return new Proxy(base, {
    get(obj, prop) {
      if (prop in obj) return obj[prop as keyof HandleBase<T>];
      // Not thenable: `await handle` must not look for a method named "then".
      if (typeof prop !== 'string' || prop === 'then') return undefined;
      return (...args: unknown[]) => backend.call(target, prop, args, resolve());
    },
  }) as DeploymentHandle<T>;
}
