/**
 * The one place the CLI touches the runtime's programmatic API (startServe / ServeInstance), so the
 * rest of the CLI depends only on IngressTarget.
 */
import type { Application } from '../application.js';
import type { ServeConfig } from '../config.js';
import { startServe, type ServeInstance } from '../serve-instance.js';
import type { ClusterHeadOptions } from '../cluster/head.js';
import type { ControllerStore } from '../controller/store/controller-store.js';

export type RuntimeInstance = ServeInstance;

export interface StartRuntimeOptions {
  name: string;
  routePrefix: string;
  config?: ServeConfig;
  /** Makes the instance a cluster head. Default: none. */
  cluster?: ClusterHeadOptions;
}

/** Resolves once every deployment is healthy; rejects (having stopped everything) with the cause. */
export function startRuntime(app: Application, opts: StartRuntimeOptions): Promise<RuntimeInstance> {
  return startServe({
    applications: [{ name: opts.name, app, routePrefix: opts.routePrefix }],
    config: opts.config,
    cluster: opts.cluster,
  });
}

/** A head with no application yet (serve start --head); applications arrive through deploy(). */
export function startHead(opts: {
  config?: ServeConfig;
  cluster: ClusterHeadOptions;
  checkpoint?: string;
  /** Heads sharing their state in etcd: the store, and the instance starts as a standby. */
  store?: ControllerStore;
}): Promise<RuntimeInstance> {
  return startServe({
    applications: [],
    config: opts.config,
    cluster: opts.cluster,
    checkpoint: opts.checkpoint,
    ...(opts.store ? { store: opts.store, standby: true } : {}),
  });
}
