/**
 * `@deployment(options)`: marks a class as a deployment (TC39 class decorator, no reflect-metadata).
 * The class gets a static `bind(...args)` that returns an Application node (application.ts), and is
 * registered by name so that a replica, which loads the user's module by path, can find it even when
 * the module does not export it.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { Application } from './application.js';
import { validateDeploymentOptions } from './config.js';
import type { AutoscalingPolicy } from './controller/autoscaling-policy.js';

export type Placement = 'thread' | 'process';

export interface AutoscalingOptions {
  /** Fewest replicas the autoscaler keeps. Default: 1. */
  minReplicas?: number;
  /** Most replicas the autoscaler starts. Default: 1, or 100 with numReplicas 'auto'. */
  maxReplicas?: number;
  /** Replicas started before any metric arrives. Default: minReplicas. */
  initialReplicas?: number;
  /** Ongoing + queued requests per replica the autoscaler aims at. Default: 2. */
  targetOngoingRequests?: number;
  /** How long the demand must call for more replicas before scaling up, in seconds. Default: 30. */
  upscaleDelayS?: number;
  /** How long the demand must call for fewer replicas before scaling down, in seconds. Default: 600. */
  downscaleDelayS?: number;
  /** How often replicas and handles report their load, in seconds. Default: 1. */
  metricsIntervalS?: number;
  /**
   * Seconds of load samples averaged into each decision; shorter reacts faster to a burst, longer
   * ignores blips. Ray's is 30, which with its delays reacts in about 40 s. Default: 5.
   */
  lookBackPeriodS?: number;
  /** Multiplies how far each upscale moves toward the wanted count (Ray's upscaling_factor). Default: 1. */
  upscalingFactor?: number;
  /** Multiplies how far each downscale moves toward the wanted count (Ray's downscaling_factor). Default: 1. */
  downscalingFactor?: number;
  /**
   * The policy: a function (see autoscaling-policy.ts), or 'default' (Ray's formula) or 'llm' (also
   * engine waiting queue and KV-cache use, from the replicas' autoscalingMetrics()) by name.
   * Default: startServe's autoscalingPolicy, else 'default'.
   */
  policy?: AutoscalingPolicy | 'default' | 'llm';
}

export interface ResourceOptions {
  /** CPUs reserved per replica (placement accounting, not a cgroup). Default: 0 (replicas mostly wait on I/O or native threads). */
  cpus?: number;
  /** GPUs per replica; a fraction (e.g. 0.5) shares one GPU, more than 1 must be whole. Default: 0. */
  gpus?: number;
  /** Memory reserved per replica, in MiB (accounting only). Default: 0. */
  memoryMb?: number;
}

/** A stateless task deployment's pool of worker threads in each replica (replica/task-pool.ts). */
export interface PoolOptions {
  /** Threads kept even when idle. Default: 1. */
  minThreads?: number;
  /** Most threads, i.e. calls of one replica running in parallel. Default: 2. */
  maxThreads?: number;
  /** How long a thread above minThreads may idle before it stops, in ms. Default: 60000. */
  idleTimeoutMs?: number;
}

export interface DeploymentOptions {
  /** Unique name within the application; the replica finds the class by it. Default: the class name. */
  name?: string;
  /** How many replicas to run, or 'auto' to let the autoscaler decide within `autoscaling`. Default: 1. */
  numReplicas?: number | 'auto';
  /** Requests one replica runs at once; more wait in the callers' routers. Default: 5. */
  maxOngoingRequests?: number;
  /**
   * How callers pick a replica: 'pow2' (power of two choices on in-flight counts) or 'prefix-aware'
   * (requests sharing a prompt prefix go to the same replica, where the prefix is likely in its KV cache,
   * falling back to power of two choices when load is uneven). Default: 'pow2'.
   */
  routing?: 'pow2' | 'prefix-aware';
  /** Requests each caller (proxy or handle) queues for this deployment before failing with BackPressureError; -1 is unbounded. Default: -1. */
  maxQueuedRequests?: number;
  /** Autoscaling bounds and timing, used when numReplicas is 'auto' or this is given. Default: none (fixed numReplicas). */
  autoscaling?: AutoscalingOptions;
  /** Resources each replica reserves on its node. Default: { cpus: 0, gpus: 0, memoryMb: 0 }. */
  resources?: ResourceOptions;
  /** Where replicas run: a worker thread of this process or an isolated child process. Default: 'thread'. */
  placement?: Placement;
  /** Seconds between health checks of each replica (the user's checkHealth() if defined). Default: 10. */
  healthCheckPeriodS?: number;
  /** Seconds a health check may take before it counts as failed. Default: 30. */
  healthCheckTimeoutS?: number;
  /** Consecutive failed health checks after which a replica is replaced. Default: 3. */
  healthCheckFailureThreshold?: number;
  /** Seconds a stopping replica is given to finish its ongoing requests. Default: 20. */
  gracefulShutdownTimeoutS?: number;
  /** Constructor failures in a row after which the deployment is marked FAILED. Default: 3. */
  maxConstructorRetries?: number;
  /** JSON-like value passed to the class's reconfigure(config) after construction and on change. Default: none. */
  userConfig?: unknown;
  /** Path or file URL of the module defining the class, for replicas to load. Default: found from the call stack of the decorator. */
  module?: string;
  /**
   * Makes this a stateless task deployment: each replica runs every call on a piscina pool of worker
   * threads (each builds the class once), so CPU-bound calls of one replica run in parallel and a
   * cancelled call stops its thread. For stateless methods only: no streaming methods, no handles in
   * the constructor arguments, no lifecycle methods (checkHealth, reconfigure, ...). Raise
   * maxOngoingRequests to at least maxThreads so the pool fills. Read by the replica from this
   * decorator (not from bind-time or config-file overrides). Default: none (calls run in the replica's
   * own thread, on one instance).
   */
  pool?: PoolOptions;
}

/** Everything a replica needs to know about a decorated class. */
export interface DeploymentDefinition {
  /** Registered name (options.name or the class name). */
  name: string;
  modulePath: string;
  options: DeploymentOptions;
  cls: abstract new (...args: any[]) => unknown;
}

const definitions = new WeakMap<object, DeploymentDefinition>();
/** Process-wide, so a second copy of this module (two loaders) still finds the classes. */
const registry: Map<string, DeploymentDefinition> =
  ((globalThis as Record<symbol, unknown>)[Symbol.for('flotilla.deployments')] ??= new Map()) as Map<string, DeploymentDefinition>;

export function deployment(options: DeploymentOptions = {}) {
  return function decorate<C extends abstract new (...args: any[]) => unknown>(cls: C, context: ClassDecoratorContext<C>): void {
    const name = options.name ?? String(context.name);
    validateDeploymentOptions(options, `@deployment(${name})`);
    const modulePath = options.module ? toPath(options.module) : callerModule();
    const definition: DeploymentDefinition = { name, modulePath, options, cls };
    definitions.set(cls, definition);
    registry.set(name, definition);
    Object.defineProperty(cls, 'bind', {
      value: (...args: unknown[]) => new Application(definition, args),
      configurable: true, writable: true,
    });
  };
}

export function getDeploymentDefinition(cls: unknown): DeploymentDefinition | undefined {
  return typeof cls === 'function' ? definitions.get(cls) : undefined;
}

/** The definition registered under `name` by a module loaded in this process. */
export function findRegisteredDeployment(name: string): DeploymentDefinition | undefined {
  return registry.get(name);
}

function toPath(p: string): string {
  return p.startsWith('file:') ? fileURLToPath(p) : path.resolve(p);
}

const coreDir = path.dirname(fileURLToPath(import.meta.url));

/** The first stack frame outside this package: the module whose class is being decorated. */
function callerModule(): string {
  const frames = (new Error().stack ?? '').split('\n').slice(1);
  for (const frame of frames) {
    const m = /\(?((?:file:\/\/)?\/[^():]+|[A-Za-z]:\\[^():]+):\d+:\d+\)?\s*$/.exec(frame);
    if (!m) continue;
    const file = toPath(m[1]!);
    if (file.startsWith(coreDir + path.sep) || file.includes(`${path.sep}node_modules${path.sep}`)) continue;
    return file;
  }
  return '';
}
