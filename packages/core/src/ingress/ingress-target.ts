/**
 * The contract between the runtime (controller, handles, routers) and the ingress proxies (HTTP, gRPC).
 * The proxies see only this interface; ServeInstance (serve-instance.ts) implements it.
 */
import type { DeploymentHandle } from '../handle.js';
import type { Cancellation } from '../actor/cancellation.js';

export type MethodKind = 'unary' | 'stream';

export interface RouteInfo {
  app: string;
  /** e.g. '/' or '/summarize'; unique across applications. */
  routePrefix: string;
  /** The application's ingress deployment (the root of its bind graph). */
  ingress: string;
  /** All deployments of the app, for gRPC calls that name one. */
  deployments: string[];
  /** Public methods of the ingress class and whether each is an async generator. */
  methods: Record<string, MethodKind>;
  /** True when the ingress class defines handleHttp(req): the proxy hands it every request under the prefix. */
  rawHttp: boolean;
  /**
   * True when the raw-HTTP class declares `static handlesMalformedJson = true`: a JSON body that does not
   * parse reaches handleHttp as text with `bodyError` set, so the class answers in its own protocol's shape.
   * Otherwise (the default) the proxy answers 400 itself.
   */
  handlesMalformedJson?: boolean;
}

export interface CallOptions {
  requestId?: string;
  signal?: AbortSignal;
  /**
   * The runtime's own cancellation (actor/cancellation.ts): what the proxies pass, so that no
   * AbortSignal is built for a call nobody cancels. When given, it wins over `signal` (which callers
   * then define as a getter of `cancel.signal`). Default: none.
   */
  cancel?: Cancellation;
  timeoutMs?: number;
  /**
   * Calls with the same key go to the same replica while it has room and is not much busier than the
   * others (rendezvous hashing, router/prefix-aware-router.ts): sticky sessions, e.g. all rounds of one
   * speculative-decoding request. Default: none (power of two choices, or the prompt prefix for a
   * deployment with routing 'prefix-aware').
   */
  routingKey?: string;
}

/** What handleHttp(req) receives (plain data: it crosses to the replica). */
export interface HttpRequestLike {
  method: string;
  /** Path below the route prefix, always starting with '/'. */
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  /** Parsed JSON when the content type is JSON, else the raw text; undefined when empty. */
  body: unknown;
  /**
   * Why a body sent as JSON does not parse (then `body` is its raw text). Only for classes that declare
   * `static handlesMalformedJson = true`; for the others the proxy answers 400 before calling them.
   */
  bodyError?: string;
  requestId: string;
  clientIp: string;
}

/**
 * What handleHttp returns for a whole response. A streaming handleHttp is an async generator whose first
 * yield is an HttpResponseLike head (body ignored) and whose later yields are string chunks written as is.
 */
export interface HttpResponseLike {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

export type ReplicaState = 'STARTING' | 'RUNNING' | 'UNHEALTHY' | 'STOPPING' | 'STOPPED';
export type DeploymentStatus = 'UPDATING' | 'HEALTHY' | 'UNHEALTHY' | 'FAILED' | 'STOPPING';

export interface ReplicaStatusInfo {
  id: string;
  state: ReplicaState;
  placement: 'thread' | 'process' | 'remote' | 'local';
  node: string;
  pid?: number;
  ongoing: number;
  startedAtMs: number;
}

/** A change of a deployment's target replica count (autoscaling or a new config). */
export interface ScalingDecisionInfo {
  atMs: number;
  from: number;
  to: number;
  /** 'scale-up', 'scale-down', 'scale-from-zero', 'bounds', 'config' or 'restored'. */
  reason: string;
  message: string;
}

export interface DeploymentStatusInfo {
  name: string;
  status: DeploymentStatus;
  /** Why the deployment is unhealthy or failed (e.g. the constructor's error). */
  message?: string;
  targetReplicas: number;
  replicas: ReplicaStatusInfo[];
  queued: number;
  ongoing: number;
  /** Recent target changes, oldest first (at most 20). */
  decisions?: ScalingDecisionInfo[];
}

export interface ApplicationStatusInfo {
  name: string;
  routePrefix: string;
  status: 'DEPLOYING' | 'RUNNING' | 'DEPLOY_FAILED' | 'DELETING';
  deployments: DeploymentStatusInfo[];
}

export interface ServeStatus {
  startedAtMs: number;
  http?: string;
  grpc?: string;
  applications: ApplicationStatusInfo[];
  /** Where agents join, when the instance is a cluster head. */
  cluster?: string;
  /** The head's own node ('local') and the agents, live ones first, then recently dead ones (heads only). */
  nodes?: NodeStatusInfo[];
}

/** One node of a cluster as the head sees it. */
export interface NodeStatusInfo {
  id: string;
  state: 'ALIVE' | 'SUSPECT' | 'DEAD';
  /** What the agent reported (host, pod name); 'head' for the local node. */
  address: string;
  resources: { cpus: number; gpus: number; memoryMb: number };
  /** Resources not taken by replicas (GPU shares summed); absent for dead nodes. */
  free?: { cpus: number; gpus: number; memoryMb: number };
  replicas: number;
  labels: Record<string, string>;
  /** Since the last heartbeat (agents only). */
  lastHeartbeatMsAgo?: number;
  /** Why a DEAD node was dropped. */
  message?: string;
}

/** One replica's exposed metrics: prom-client metric JSON (Registry.getMetricsAsJSON()). */
export interface ReplicaMetrics {
  app: string;
  deployment: string;
  replica: string;
  metrics: unknown[];
}

export interface IngressTarget {
  routes(): RouteInfo[];
  /** Handle to a deployment of an app (its ingress when deployment is omitted); throws NotFoundError. */
  getHandle(app: string, deployment?: string): DeploymentHandle<any>;
  status(): ServeStatus;
  /** True once shutdown began: proxies answer 503 to new requests. */
  readonly draining: boolean;
  /** Metrics that replicas expose (collectMetrics()), gathered for a /metrics scrape. Optional. */
  replicaMetrics?(): Promise<ReplicaMetrics[]>;
}
