/**
 * Hooks for metrics and logs: what the runtime reports about itself, in the controller's process.
 * A ServeInstance exposes one RuntimeEvents (`instance.events`); listeners run synchronously, so keep
 * them cheap (increment a counter, observe a histogram). Gauges (ongoing, queued, replica counts and
 * health) are read from `instance.status()` or `instance.stats()` at scrape time instead.
 */
import { EventEmitter } from 'node:events';
import type { MethodKind } from './contract/routes.js';
import type { ReplicaState, DeploymentStatus } from './contract/status.js';

/** One finished call made through a router in this process (ingress handles and relayed replica handles). */
export interface RequestEvent {
  app: string;
  deployment: string;
  method: string;
  kind: MethodKind;
  /** 'ingress' for handles from ServeInstance.getHandle(); 'replica' for calls a replica made through its handle. */
  caller: 'ingress' | 'replica';
  requestId: string;
  durationMs: number;
  ok: boolean;
  /** The FlotillaError code when !ok (e.g. 'BACK_PRESSURE', 'USER_ERROR', 'CANCELLED'). */
  errorCode?: string;
}

export interface ReplicaStateEvent {
  app: string;
  deployment: string;
  replicaId: string;
  state: ReplicaState;
  /** Why, for UNHEALTHY/STOPPED (e.g. 'health check timed out', 'process exited with code 1'). */
  reason?: string;
}

export interface DeploymentStatusEvent {
  app: string;
  deployment: string;
  status: DeploymentStatus;
  message?: string;
}

/** One call of a @batch method inside a replica: how many requests it grouped. */
export interface BatchEvent {
  app: string;
  deployment: string;
  method: string;
  size: number;
}

/** The controller changed a deployment's target replica count (autoscaling, a new config, a restore). */
export interface ScalingDecisionEvent {
  app: string;
  deployment: string;
  atMs: number;
  from: number;
  to: number;
  /** Stable code: 'scale-up', 'scale-down', 'scale-from-zero', 'bounds', 'config', 'restored'. */
  reason: string;
  message: string;
}

/** Per-deployment counters at one instant (ServeInstance.stats()). */
export interface DeploymentStats {
  app: string;
  deployment: string;
  targetReplicas: number;
  replicas: { starting: number; running: number; unhealthy: number; stopping: number };
  /** Requests admitted by replicas, as last reported by them (health-check period). */
  ongoing: number;
  /** Requests waiting in this process's routers for a free replica slot. */
  queued: number;
  /** Requests this process's routers have sent and not yet seen finish. */
  inFlight: number;
}

export interface RuntimeEventMap {
  request: [RequestEvent];
  'replica-state': [ReplicaStateEvent];
  'deployment-status': [DeploymentStatusEvent];
  batch: [BatchEvent];
  'scaling-decision': [ScalingDecisionEvent];
}

export class RuntimeEvents extends EventEmitter<RuntimeEventMap> {}
