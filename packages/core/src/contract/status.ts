/**
 * Core's shared vocabulary for state: replica and deployment states and the status tree that
 * `/-/status`, `serve status`, the dashboard and the cluster head all read. Types only.
 */

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
  /** Its @multiplexed models as last reported (about every second); absent without a loader in use. */
  models?: MultiplexedModelsInfo;
}

/** A replica's @multiplexed models (multiplexed.ts): what it holds and its cumulative counts. */
export interface MultiplexedModelsInfo {
  /** Loaded model ids, most recently used first. */
  ids: string[];
  /** maxModelsPerReplica. */
  capacity: number;
  /** Loads started (misses). */
  loads: number;
  /** Requests served by a model already loaded or loading. */
  hits: number;
  evictions: number;
  loadFailures: number;
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
  /**
   * What the deployment has cost since it started, for a deployment with `cost` prices: US dollars, and
   * the tokens its replicas reported (controller/cost-ledger.ts). Absent without prices.
   */
  cost?: { usd: number; promptTokens: number; completionTokens: number };
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
  /** Heads that elect a leader (state in etcd): whether this head leads. Absent for a head on its own. */
  leader?: boolean;
  /** The head that leads, as this one last saw it (itself when it leads); absent while none does. */
  leaderHead?: { id: string; cluster: string; http?: string };
  /** Where the controller state lives, e.g. 'etcd://127.0.0.1:2379/default'. */
  state?: string;
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
