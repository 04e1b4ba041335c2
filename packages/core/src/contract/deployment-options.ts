/**
 * A deployment's options as the user writes them (@deployment, .options(), the config file), their
 * resolved form, and the specs the controller works from. Types only; validation and defaults live in
 * config.ts.
 */
import type { AutoscalingOptions, ResolvedAutoscaling } from './autoscaling.js';

export type Placement = 'thread' | 'process';

export interface ResourceOptions {
  /** CPUs reserved per replica (placement accounting, not a cgroup). Default: 0 (replicas mostly wait on I/O or native threads). */
  cpus?: number;
  /** GPUs per replica; a fraction (e.g. 0.5) shares one GPU, more than 1 must be whole. Default: 0. */
  gpus?: number;
  /** Memory reserved per replica, in MiB (accounting only). Default: 0. */
  memoryMb?: number;
}

/**
 * What a deployment costs, in US dollars, for `flotilla_cost_usd_total{application,deployment}`, the
 * dashboard's cost per 1K tokens and the per-request cost LLM deployments report. Replica-hours accrue in
 * core from each replica's uptime (from its start until it has stopped). Token prices need the deployment
 * to count tokens: core reads two cumulative counters from each replica's periodic report
 * (`autoscalingMetrics()`, names in USAGE_METRICS: `promptTokensTotal`, `completionTokensTotal`), which
 * LLMServer reports; a class that reports none is charged by the hour only.
 */
export interface CostOptions {
  /** Dollars per replica per hour of uptime (the machine or GPU share it holds). Default: 0. */
  perReplicaHour?: number;
  /** Dollars per 1,000 prompt tokens the replicas report. Default: 0. */
  per1kPromptTokens?: number;
  /** Dollars per 1,000 completion (generated) tokens the replicas report. Default: 0. */
  per1kCompletionTokens?: number;
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
   * (calls with the same routing key go to the same replica, e.g. requests sharing a prompt prefix to
   * the replica whose KV cache likely holds it, falling back to power of two choices when load is
   * uneven; router/prefix-aware-router.ts). 'prefix-aware' needs the class to declare how a call's key
   * is derived, as a static method (core knows no payload shapes; LLMServer declares one):
   *
   * ```ts
   * static routingKey(method: string, args: readonly unknown[]): string | undefined
   * ```
   *
   * It runs where the routing decision is made, in the callers' routers (the proxies, getHandle and the
   * relayed handle calls of replicas all route in the controller's process, which imported the class),
   * on the call's method name and arguments as sent (e.g. 'handleHttp' and [HttpRequestLike]), before
   * the call reaches a replica; so it must be cheap, synchronous and pure. undefined (or a throw) means
   * no key: power of two choices. A call's own CallOptions.routingKey wins over it. Deploying with
   * 'prefix-aware' and no static routingKey fails with DeploymentConfigError. Default: 'pow2'.
   */
  routing?: 'pow2' | 'prefix-aware';
  /**
   * Requests each caller (a proxy, or the handles of one calling deployment) queues for this deployment
   * when every replica is at maxOngoingRequests; the next one fails at once with BackPressureError, which
   * the proxies answer with 503 + Retry-After (HTTP) or RESOURCE_EXHAUSTED + retry-after metadata (gRPC).
   * -1 is unbounded. Default: 2 x maxOngoingRequests x the replicas it starts with (numReplicas, or
   * autoscaling.initialReplicas), at least 100 (config.ts defaultMaxQueuedRequests): a burst of about two
   * rounds of the deployment's capacity waits, a sustained overload is shed instead of queued without end.
   */
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
  /** Prices for cost accounting (see CostOptions). Default: none (nothing accrues, no cost is reported). */
  cost?: CostOptions;
}

/**
 * A deployment class's `static routingKey(method, args)` (see DeploymentOptions.routing): the key of a
 * call for prefix-aware routing, or undefined for none.
 */
export type RoutingKeyFunction = (method: string, args: readonly unknown[]) => string | undefined;

/** Everything a replica needs to know about a decorated class. */
export interface DeploymentDefinition {
  /** Registered name (options.name or the class name). */
  name: string;
  modulePath: string;
  options: DeploymentOptions;
  cls: abstract new (...args: any[]) => unknown;
}

export interface ResolvedDeploymentOptions {
  name: string;
  numReplicas: number | 'auto';
  maxOngoingRequests: number;
  maxQueuedRequests: number;
  routing: 'pow2' | 'prefix-aware';
  autoscaling: ResolvedAutoscaling | undefined;
  resources: Required<ResourceOptions>;
  placement: Placement;
  healthCheckPeriodS: number;
  healthCheckTimeoutS: number;
  healthCheckFailureThreshold: number;
  gracefulShutdownTimeoutS: number;
  maxConstructorRetries: number;
  userConfig: unknown;
  /** Undefined: no prices given. */
  cost?: Required<CostOptions>;
}

export interface DeploymentSpec {
  app: string;
  name: string;
  className: string;
  modulePath: string;
  args: unknown[];
  options: ResolvedDeploymentOptions;
  /**
   * The class's static routingKey bound to it, for the callers' routers. A function: it stays in the
   * controller's process (the process that imported the class) and is never sent to replicas. Default: none.
   */
  routingKey?: RoutingKeyFunction;
  /**
   * The class's static multiplexedModelId(method, args) bound to it (router/routing-key.ts): a call's
   * multiplexed model id where the caller named none. Stays in the controller's process like routingKey.
   */
  multiplexedModelId?: RoutingKeyFunction;
  /** Changes with the code, the arguments or any option that needs new replicas (not userConfig, not scaling). */
  version: string;
}
