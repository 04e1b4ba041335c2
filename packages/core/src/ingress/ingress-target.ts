/**
 * The contract between the runtime (controller, handles, routers) and the ingress proxies (HTTP, gRPC).
 * The proxies see only this interface; ServeInstance (serve-instance.ts) implements it.
 */
import type { DeploymentHandle } from '../handle.js';
import type { RouteInfo } from '../contract/routes.js';
import type { ReplicaMetrics, ServeStatus } from '../contract/status.js';

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
