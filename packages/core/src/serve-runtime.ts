/**
 * The runtime parts a ServeInstance owns, built and wired to each other: the controller, the routers
 * (settings read from each deployment's current spec), the direct-link broker, the cluster head when
 * one is asked for, and the store the controller keeps its state in.
 *
 * Separate from serve-instance.ts, which drives these parts over the instance's life (deploy, apply,
 * lead, drain, stop): this is only their construction, the one place that says which part feeds which.
 */
import os from 'node:os';
import { DeploymentConfigError } from './errors.js';
import { Controller } from './controller/controller.js';
import { detectLocalResources } from './controller/placement.js';
import { defaultCheckpointPath } from './controller/checkpoint.js';
import { FileControllerStore } from './controller/store/file-store.js';
import { RouterSet } from './router/router-set.js';
import { LinkBroker } from './actor/link-broker.js';
import { ClusterHead } from './cluster/head.js';
import type { ControllerStore } from './controller/store/controller-store.js';
import type { RuntimeEvents } from './runtime-events.js';
import type { CallServer } from './actor/rpc-peer.js';
import type { StartServeOptions } from './serve-options.js';

export interface ServeRuntime {
  controller: Controller;
  routers: RouterSet;
  /** Replica sets pushed to replicas for their direct links. */
  links: LinkBroker;
  /** The cluster head when options.cluster was given. */
  cluster: ClusterHead | undefined;
  /** Where the controller keeps its state; undefined with checkpoint: false. */
  store: ControllerStore | undefined;
}

/**
 * Builds the parts for `options`; `appKeys` ('name@prefix' of the applications given at start) names
 * the default checkpoint file, and `relay` serves the handle calls a deployment's replicas relay here.
 * Throws DeploymentConfigError for a standby given applications.
 */
export function buildServeRuntime(
  options: StartServeOptions,
  appKeys: string[],
  events: RuntimeEvents,
  relay: (app: string, deployment: string) => CallServer,
): ServeRuntime {
  // The routers and the link broker read the controller's deployments lazily, once it exists.
  let controller: Controller | undefined;
  const spec = (app: string, dep: string) => controller?.apps.get(app)?.deployments.get(dep)?.spec;
  const links = new LinkBroker({
    enabled: options.directLinks !== false,
    routing: (app, dep) => spec(app, dep)?.options.routing,
    derivesModelId: (app, dep) => !!spec(app, dep)?.multiplexedModelId,
    onRequest: (e) => events.emit('request', e),
  });
  const routers = new RouterSet(events, (app, dep) => {
    const s = spec(app, dep);
    return (
      s && {
        maxQueuedRequests: s.options.maxQueuedRequests,
        routing: s.options.routing,
        routingKey: s.routingKey,
        modelIdOf: s.multiplexedModelId,
      }
    );
  });
  const detected = detectLocalResources(process.env, os.availableParallelism(), Math.floor(os.totalmem() / 2 ** 20));
  const node = { ...detected, ...options.resources };
  const cluster = options.cluster ? new ClusterHead(options.cluster, node) : undefined;
  if (options.standby && appKeys.length > 0) {
    throw new DeploymentConfigError('a standby head starts with no application (they come from the leader state)');
  }
  const store =
    options.store ??
    (options.checkpoint === false
      ? undefined
      : new FileControllerStore(options.checkpoint ?? defaultCheckpointPath(appKeys)));
  controller = new Controller({
    placement: cluster?.placement,
    remote: cluster,
    node,
    tickMs: options.tickMs,
    events,
    autoscalingPolicy: options.autoscalingPolicy,
    prestartWorkers: options.prestartWorkers,
    relay,
    publish: (app, dep, running, why) => {
      routers.publish(app, dep, running, why);
      links.publish(app, dep, running, why);
    },
    publishModels: (app, dep, reports) => routers.publishModels(app, dep, reports),
    onActor: (actor) => links.attach(actor),
    queued: (app, dep) => routers.queued(app, dep),
    store,
    nodes: cluster && (() => cluster.storedNodes()),
  });
  return { controller, routers, links, cluster, store };
}
