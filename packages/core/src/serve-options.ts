/**
 * What the programmatic API takes (startServe, serve.run, ServeInstance.apply/deploy) and the checks on
 * it: names and route prefixes unique, the applications built into prefixed graphs (withPrefixes), and
 * a deployed application's prefix not another's (assertPrefixesFree).
 *
 * Separate from serve-instance.ts, which runs the instance: these are plain data shapes and pure
 * checks, with no runtime state behind them (serve-instance.ts re-exports the types).
 */
import { buildGraph, type Application } from './application.js';
import { DeploymentConfigError } from './errors.js';
import type { ServeConfig } from './config.js';
import type { NodeResources } from './controller/placement.js';
import type { ControllerStore } from './controller/store/controller-store.js';
import type { AutoscalingPolicy } from './contract/autoscaling.js';
import type { ServeStatus } from './contract/status.js';
import type { ClusterHeadOptions } from './cluster/head.js';

export interface ApplicationSpec {
  name: string;
  /** Default: '/' for a single application, '/<name>' otherwise. */
  routePrefix?: string;
  app: Application;
}

export interface StartServeOptions {
  applications: ApplicationSpec[];
  /** A serve config file (YAML/JSON) or its parsed form; its deployment entries override options. Default: none. */
  config?: string | ServeConfig;
  /** This node's resources for placement. Default: detected (CPUs, memory; GPUs from FLOTILLA_GPUS or CUDA_VISIBLE_DEVICES). */
  resources?: Partial<NodeResources>;
  /** Controller reconcile period in ms. Default: 100. */
  tickMs?: number;
  /** Seconds startServe waits for every deployment to be healthy. Default: 120. */
  startupTimeoutS?: number;
  /** Policy for autoscaled deployments that name none in their options. Default: defaultAutoscalingPolicy (Ray's). */
  autoscalingPolicy?: AutoscalingPolicy;
  /**
   * File the controller checkpoints its targets to (autoscaled replica counts, decision history), or
   * false for none. A file left by a controller that died is read back at start-up; a clean shutdown
   * removes it. Default: os.tmpdir()/flotilla/controller-<hash of the working directory and app names>.json.
   */
  checkpoint?: string | false;
  /**
   * Where the controller keeps its state instead of the checkpoint file: etcd (controller/store/) for
   * heads that stand in for each other. Default: the checkpoint file (see `checkpoint`).
   */
  store?: ControllerStore;
  /**
   * A standby head: the controller does not run (no replicas start) until lead() is called; meanwhile the
   * proxies serve from follow()'s target (the leader). Only with no applications. Default: false.
   */
  standby?: boolean;
  /**
   * Makes this instance a cluster head: node agents (`serve agent --address HOST:PORT`) join on this
   * port, and replicas are placed over this node and theirs by resources. Default: none (this node only).
   */
  cluster?: ClusterHeadOptions;
  /**
   * While an autoscaled thread deployment waits out its upscaleDelayS, boot the worker threads of the
   * replicas it would add, so that they serve soon after the decision (the decision itself is unchanged).
   * Default: true.
   */
  prestartWorkers?: boolean;
  /**
   * Handle calls between replicas of this node go straight from the caller's replica to the callee's
   * (a MessagePort between threads, a local socket when a process is involved; replica/direct-handles.ts),
   * each replica routing with a router of its own fed by the replica sets pushed to it. Calls still
   * relay through this process where no link can be made (replicas on other nodes), until the set has
   * arrived, and when no linked replica is free (they queue here). false: every call relays. Default: true.
   */
  directLinks?: boolean;
}

/** What ServeInstance.apply() takes: the applications as they should now be. */
export interface ApplyOptions {
  /**
   * deploy() only: how the applications were deployed (JSON data, e.g. serve deploy's request), kept in
   * the checkpoint so that a restarted head can deploy them again (restorableSources()). Default: none.
   */
  source?: unknown;
  /** A serve config file or its parsed form, replacing the one given at start. Default: the one given at start. */
  config?: string | ServeConfig;
  /** Seconds apply() waits for every application to be RUNNING again. Default: 120. */
  timeoutS?: number;
}

export interface RunOptions extends Omit<StartServeOptions, 'applications'> {
  /** Default: 'default'. */
  name?: string;
  /** Default: '/'. */
  routePrefix?: string;
}

/** The leader fields of a head's status (contract/status.ts). */
export type HaStatusFields = Pick<ServeStatus, 'leader' | 'leaderHead' | 'state'>;

/** Names and route prefixes checked for clashes (one app: '/', several: '/<name>' by default), each app built into its graph. */
export function withPrefixes(applications: ApplicationSpec[]) {
  const names = new Set<string>();
  const prefixes = new Set<string>();
  return applications.map((spec) => {
    const routePrefix = spec.routePrefix ?? (applications.length === 1 ? '/' : `/${spec.name}`);
    if (names.has(spec.name)) throw new DeploymentConfigError(`two applications named '${spec.name}'`);
    if (prefixes.has(routePrefix))
      throw new DeploymentConfigError(`two applications with route prefix '${routePrefix}'`);
    names.add(spec.name);
    prefixes.add(routePrefix);
    return { name: spec.name, routePrefix, graph: buildGraph(spec.name, spec.app) };
  });
}

/**
 * deploy(): each given application's route prefix must be free or already its own (another
 * application's prefix throws DeploymentConfigError, before anything changes).
 */
export function assertPrefixesFree(
  given: { name: string; routePrefix: string }[],
  existing: { name: string; routePrefix: string }[],
): void {
  for (const a of given) {
    const taken = existing.find((o) => o.name !== a.name && o.routePrefix === a.routePrefix);
    if (taken) {
      throw new DeploymentConfigError(
        `route prefix '${a.routePrefix}' is taken by application '${taken.name}'; ` +
          'give this one another route prefix',
        { app: a.name },
      );
    }
  }
}
