/**
 * DeploymentHandle: how callers (proxies, tests, other deployments) reach a deployment.
 *
 * A handle is a thin Proxy over a HandleBackend. In the controller's process the backend is the
 * caller's Router. Inside a replica, handles arrive as plain descriptors in the constructor arguments
 * and are rebuilt over the replica's actor channel: calls go to the parent, which routes them through a
 * router kept per calling deployment. Relaying costs one extra hop (a postMessage or IPC write) but keeps
 * replica sets, health and placement in one place, works the same for thread and process replicas (a
 * child process cannot share MessagePorts), and leaves room for direct channels later.
 */
import { randomUUID } from 'node:crypto';
import { RequestTimeoutError } from './errors.js';
import type { CallOptions } from './ingress/ingress-target.js';
import type { HandleTarget } from './actor/protocol.js';

export type { CallOptions };

/** Where a handle sends calls; requestId is always set, signal carries timeouts and cancels. */
export interface HandleBackend {
  call(target: HandleTarget, method: string, args: unknown[], opts: ResolvedCallOptions): Promise<unknown>;
  stream(target: HandleTarget, method: string, args: unknown[], opts: ResolvedCallOptions): AsyncIterable<unknown>;
}

export interface ResolvedCallOptions {
  requestId: string;
  signal?: AbortSignal;
  /** See CallOptions.routingKey; never inherited by nested calls (they go to other deployments). */
  routingKey?: string;
}

type AnyFn = (...args: any[]) => any;
type MethodKeys<T> = { [K in keyof T]: T[K] extends AnyFn ? (K extends string ? K : never) : never }[keyof T];
type Reserved = 'remote' | 'remoteStream' | 'options' | 'stream' | 'target';

/** `await handle.method(...args)` for every method of T. */
export type UnaryMethods<T> = {
  [K in Exclude<MethodKeys<T>, Reserved>]: T[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<Awaited<R>> : never;
};

/** `for await (const x of handle.stream.method(...args))` for async generator methods of T. */
export type StreamMethods<T> = IsAny<T> extends true ? { [method: string]: (...args: any[]) => AsyncIterable<any> } : {
  [K in MethodKeys<T>]: T[K] extends (...a: infer A) => AsyncIterable<infer Y> ? (...a: A) => AsyncIterable<Y> : never;
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

/** Fills requestId and folds timeoutMs into the signal (aborting with RequestTimeoutError). */
export function resolveCallOptions(opts: CallOptions, fallback?: ResolvedCallOptions): ResolvedCallOptions {
  const requestId = opts.requestId ?? fallback?.requestId ?? randomUUID();
  const signals = [opts.signal ?? fallback?.signal].filter((s): s is AbortSignal => s !== undefined);
  if (opts.timeoutMs !== undefined) {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new RequestTimeoutError(`request ${requestId} timed out after ${opts.timeoutMs} ms`)),
      opts.timeoutMs);
    timer.unref?.();
    ac.signal.addEventListener('abort', () => clearTimeout(timer));
    signals.push(ac.signal);
  }
  const signal = signals.length <= 1 ? signals[0] : AbortSignal.any(signals);
  return opts.routingKey === undefined ? { requestId, signal } : { requestId, signal, routingKey: opts.routingKey };
}

/**
 * Builds the Proxy. `context` supplies defaults per call (inside a replica: the current request's
 * requestId and signal, so nested calls are cancelled with their parent).
 */
export function createHandle<T>(target: HandleTarget, backend: HandleBackend, defaults: CallOptions = {},
  context?: () => ResolvedCallOptions | undefined): DeploymentHandle<T> {
  const resolve = (opts?: CallOptions) => resolveCallOptions({ ...defaults, ...opts }, context?.());
  const base: HandleBase<T> = {
    target,
    remote: (method, args, opts) => backend.call(target, method, args, resolve(opts)),
    remoteStream: (method, args, opts) => backend.stream(target, method, args, resolve(opts)),
    options: (opts) => createHandle<T>(target, backend, { ...defaults, ...opts }, context),
    stream: new Proxy({}, {
      get: (_t, prop) => typeof prop === 'string'
        ? (...args: unknown[]) => backend.stream(target, prop, args, resolve())
        : undefined,
    }) as StreamMethods<T>,
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
