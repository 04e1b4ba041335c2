/**
 * The programmatic API: `startServe({ applications })` / `serve.run(app)` start a controller and its
 * replicas and return a ServeInstance, which is what the proxies and the CLI talk to (IngressTarget).
 */
import os from 'node:os';
import { buildGraph, type Application } from './application.js';
import { loadServeConfig, type ServeConfig } from './config.js';
import { DeploymentConfigError, NotFoundError, UnavailableError } from './errors.js';
import { createHandle, type DeploymentHandle, type HandleBackend } from './handle.js';
import { Controller } from './controller/controller.js';
import { detectLocalResources, type NodeResources } from './controller/placement.js';
import { defaultCheckpointPath, type ControllerCheckpoint } from './controller/checkpoint.js';
import { FileControllerStore } from './controller/store/file-store.js';
import type { ControllerStore } from './controller/store/controller-store.js';
import { RouterSet } from './router/router-set.js';
import { RuntimeEvents, type DeploymentStats, type RuntimeEventMap } from './runtime-events.js';
import type { CallServer, IncomingCall } from './actor/rpc-peer.js';
import { LinkBroker, type LinkStats } from './actor/link-broker.js';
import type { AutoscalingPolicy } from './contract/autoscaling.js';
import type { IngressTarget } from './ingress/ingress-target.js';
import type { ReplicaMetrics, ServeStatus } from './contract/status.js';
import type { RouteInfo } from './contract/routes.js';
import { settle } from './controller/replica-set.js';
import { ClusterHead, type ClusterHeadOptions } from './cluster/head.js';

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

export class ServeInstance implements IngressTarget, AsyncDisposable {
  readonly events = new RuntimeEvents();
  readonly startedAtMs = Date.now();
  /** Addresses reported by status(); set by whoever starts the proxies. */
  readonly endpoints: { http?: string; grpc?: string } = {};
  private isDraining = false;
  private shutdownPromise: Promise<void> | undefined;
  private readonly controller: Controller;
  private readonly routers: RouterSet;
  /** Replica sets pushed to replicas for their direct links. */
  private readonly links: LinkBroker;
  /** Handle calls relayed through this process, by calling deployment ('app/deployment'). */
  private readonly relayed = new Map<string, number>();
  private config: ServeConfig | undefined;
  /** The cluster head when options.cluster was given; await `cluster.listening` for its address. */
  readonly cluster: ClusterHead | undefined;
  /** While this head stands by: the leader, as its proxies see it (routes, handles, status). */
  private follower: IngressTarget | undefined;
  /** Leader fields of status() on a head that elects its leader (cluster/ha-head.ts sets it). */
  haStatus: (() => HaStatusFields) | undefined;

  constructor(options: StartServeOptions) {
    const config = typeof options.config === 'string' ? loadServeConfig(options.config) : options.config;
    this.config = config;
    const apps = withPrefixes(options.applications);
    this.links = new LinkBroker({
      enabled: options.directLinks !== false,
      routing: (app, dep) => this.controller.apps.get(app)?.deployments.get(dep)?.spec.options.routing,
      derivesModelId: (app, dep) => !!this.controller.apps.get(app)?.deployments.get(dep)?.spec.multiplexedModelId,
      onRequest: (e) => this.events.emit('request', e),
    });
    this.routers = new RouterSet(this.events, (app, dep) => {
      const spec = this.controller.apps.get(app)?.deployments.get(dep)?.spec;
      return (
        spec && {
          maxQueuedRequests: spec.options.maxQueuedRequests,
          routing: spec.options.routing,
          routingKey: spec.routingKey,
          modelIdOf: spec.multiplexedModelId,
        }
      );
    });
    const detected = detectLocalResources(process.env, os.availableParallelism(), Math.floor(os.totalmem() / 2 ** 20));
    const node = { ...detected, ...options.resources };
    this.cluster = options.cluster ? new ClusterHead(options.cluster, node) : undefined;
    if (options.standby && apps.length > 0) {
      throw new DeploymentConfigError('a standby head starts with no application (they come from the leader state)');
    }
    const store =
      options.store ??
      (options.checkpoint === false
        ? undefined
        : new FileControllerStore(
            options.checkpoint ?? defaultCheckpointPath(apps.map((a) => `${a.name}@${a.routePrefix}`)),
          ));
    const cluster = this.cluster;
    this.controller = new Controller({
      placement: this.cluster?.placement,
      remote: this.cluster,
      node,
      tickMs: options.tickMs,
      events: this.events,
      autoscalingPolicy: options.autoscalingPolicy,
      prestartWorkers: options.prestartWorkers,
      relay: (app, deployment) => this.relay(app, deployment),
      publish: (app, dep, running, why) => {
        this.routers.publish(app, dep, running, why);
        this.links.publish(app, dep, running, why);
      },
      publishModels: (app, dep, reports) => this.routers.publishModels(app, dep, reports),
      onActor: (actor) => this.links.attach(actor),
      queued: (app, dep) => this.routers.queued(app, dep),
      store,
      nodes: cluster && (() => cluster.storedNodes()),
    });
    if (store instanceof FileControllerStore) this.controller.restoreFrom(store.loadSync());
    for (const a of apps) this.controller.deploy(a.name, a.routePrefix, a.graph, config);
    if (!options.standby) this.controller.start();
    if (this.cluster) {
      this.cluster.frontend = {
        routes: () => this.routes(),
        status: () => this.status(),
        proxyServer: () => this.proxyServer(),
        adopt: (nodeId, ids) => this.controller.adopt(nodeId, ids),
      };
    }
  }

  /**
   * Adds applications to the running instance, or updates those of the same name (as apply() does),
   * leaving the others running: what `serve deploy` does on a head. Resolves when all are RUNNING.
   * Throws DeploymentConfigError before changing anything when the options are invalid or a route
   * prefix is another application's.
   */
  async deploy(applications: ApplicationSpec[], options: ApplyOptions = {}): Promise<void> {
    if (this.isDraining) throw this.drainingError();
    const given = withPrefixes(applications.map((a) => ({ ...a, routePrefix: a.routePrefix ?? '/' })));
    for (const a of given) {
      const taken = [...this.controller.apps.values()].find(
        (o) => o.name !== a.name && o.routePrefix === a.routePrefix,
      );
      if (taken) {
        throw new DeploymentConfigError(
          `route prefix '${a.routePrefix}' is taken by application '${taken.name}'; ` +
            'give this one another route prefix',
          { app: a.name },
        );
      }
    }
    if (options.config !== undefined) {
      this.config = typeof options.config === 'string' ? loadServeConfig(options.config) : options.config;
    }
    this.controller.upsert(
      given.map((g) => ({ ...g, source: options.source })),
      this.config,
    );
    await this.ready(options.timeoutS);
  }

  /**
   * Applications that were deployed onto this head (deploy() with a source) when its previous controller
   * died, as their sources: deploying them again right after start-up restores their targets and
   * re-adopts their replicas on agents.
   */
  restorableSources(): { name: string; source: unknown }[] {
    return this.controller.restorableSources();
  }

  /** True while this is a standby head whose controller waits for lead(). */
  get standingBy(): boolean {
    return !this.controller.started;
  }

  /**
   * A standby head takes over: its controller starts from `state` (the last leader's), whose applications
   * deployed onto a head are then deployed again (restorableSources), re-adopting the agents' replicas.
   */
  lead(state: ControllerCheckpoint | undefined): void {
    if (this.controller.started) return;
    this.controller.restoreFrom(state);
    this.controller.start();
  }

  /**
   * While standing by (or restoring after the election), the proxies serve from `target`, the leader's
   * routing table and routers; undefined: from this instance again.
   */
  follow(target: IngressTarget | undefined): void {
    this.follower = target;
  }

  /**
   * Moves the running instance to new applications or a new config, without a restart: a deployment
   * whose code, arguments or replica options changed is rolled (at most max(20%, 1) of its replicas
   * replaced at a time, each old one drained only once a new one serves); a userConfig-only change
   * reaches the running replicas through reconfigure(); a replica count or autoscaling change only
   * moves the target. Applications no longer listed are stopped. Resolves when all are RUNNING again.
   * Throws DeploymentConfigError before changing anything when the new options are invalid.
   */
  async apply(applications: ApplicationSpec[], options: ApplyOptions = {}): Promise<void> {
    if (this.isDraining) throw this.drainingError();
    if (options.config !== undefined) {
      this.config = typeof options.config === 'string' ? loadServeConfig(options.config) : options.config;
    }
    this.controller.apply(withPrefixes(applications), this.config);
    await this.ready(options.timeoutS);
  }

  get draining(): boolean {
    return this.isDraining;
  }

  on<K extends keyof RuntimeEventMap>(event: K, listener: (...args: RuntimeEventMap[K]) => void): this {
    this.events.on(event, listener as never);
    return this;
  }

  routes(): RouteInfo[] {
    if (this.follower) return this.follower.routes();
    return [...this.controller.apps.values()].map((a) => a.route());
  }

  getHandle<T = any>(app: string, deployment?: string): DeploymentHandle<T> {
    if (this.follower) return this.follower.getHandle(app, deployment) as DeploymentHandle<T>;
    const state = this.controller.apps.get(app);
    if (!state) throw new NotFoundError(`no application '${app}'`);
    const name = deployment ?? state.ingress;
    if (!state.deployments.has(name)) throw new NotFoundError(`no deployment '${name}' in application '${app}'`);
    const backend: HandleBackend = {
      call: (t, method, args, opts) =>
        this.isDraining
          ? Promise.reject(this.drainingError())
          : this.routers.get('ingress', t.app, t.deployment).call(method, args, opts),
      stream: (t, method, args, opts) =>
        this.isDraining
          ? rejectStream(this.drainingError())
          : this.routers.get('ingress', t.app, t.deployment).stream(method, args, opts),
    };
    return createHandle<T>({ app, deployment: name }, backend);
  }

  /** Asks every RUNNING replica for the metrics it exposes (a replica that does not answer within 2 s is left out). */
  async replicaMetrics(): Promise<ReplicaMetrics[]> {
    const asks: Promise<ReplicaMetrics | null>[] = [];
    for (const app of this.controller.apps.values()) {
      for (const d of app.deployments.values()) {
        for (const { id, actor } of d.runningActors()) {
          asks.push(
            settle(actor, actor.control.collectMetrics(), 2000).then(
              (metrics) => (metrics.length > 0 ? { app: app.name, deployment: d.name, replica: id, metrics } : null),
              () => null,
            ),
          );
        }
      }
    }
    return (await Promise.all(asks)).filter((m): m is ReplicaMetrics => m !== null);
  }

  status(): ServeStatus {
    const ha = this.haStatus?.();
    // A standby shows the leader's applications and nodes (as its proxies serve them), with its own
    // addresses and leader fields.
    if (this.follower) {
      const leader = this.follower.status();
      return { ...leader, startedAtMs: this.startedAtMs, ...this.endpoints, cluster: this.cluster?.address, ...ha };
    }
    return {
      startedAtMs: this.startedAtMs,
      ...this.endpoints,
      applications: [...this.controller.apps.values()].map((a) => a.describe()),
      ...(this.cluster ? { cluster: this.cluster.address, nodes: this.cluster.describeNodes() } : {}),
      ...ha,
    };
  }

  stats(): DeploymentStats[] {
    const out: DeploymentStats[] = [];
    for (const app of this.controller.apps.values()) {
      for (const d of app.deployments.values()) {
        const info = d.describe();
        out.push({
          app: app.name,
          deployment: d.name,
          targetReplicas: d.targetReplicas,
          replicas: d.counts(),
          ongoing: info.ongoing,
          queued: info.queued,
          inFlight: this.routers.inFlight(app.name, d.name),
        });
      }
    }
    return out;
  }

  /** Resolves when every application is RUNNING; rejects when one fails to deploy or on timeout. */
  async ready(timeoutS = 120): Promise<void> {
    const deadline = Date.now() + timeoutS * 1000;
    for (;;) {
      const apps = [...this.controller.apps.values()];
      const failed = apps.find((a) => a.status === 'DEPLOY_FAILED');
      if (failed) {
        throw new DeploymentConfigError(`application '${failed.name}': ${failed.failure()}`, { app: failed.name });
      }
      if (apps.every((a) => a.status === 'RUNNING')) return;
      if (Date.now() > deadline) {
        const waiting = apps.flatMap((a) =>
          a
            .describe()
            .deployments.filter((d) => d.status !== 'HEALTHY')
            .map((d) => `${a.name}/${d.name}: ${d.status}${d.message ? ` (${d.message})` : ''}`),
        );
        throw new UnavailableError(`not ready after ${timeoutS} s: ${waiting.join('; ')}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Drains: new ingress requests fail with UnavailableError (proxies answer 503), requests in flight
   * finish (within the longest gracefulShutdownTimeoutS), then replicas stop, callers before callees.
   */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= this.drainAndStop();
    return this.shutdownPromise;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  private async drainAndStop(): Promise<void> {
    this.isDraining = true;
    const graceS = Math.max(
      0,
      ...[...this.controller.apps.values()].flatMap((a) =>
        [...a.deployments.values()].map((d) => d.spec.options.gracefulShutdownTimeoutS),
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.routers.ingressRouters().map((r) => r.idle())),
      new Promise((r) => {
        timer = setTimeout(r, graceS * 1000);
      }),
    ]);
    clearTimeout(timer);
    await this.controller.dispose();
    await this.cluster?.close();
    this.routers.closeAll(this.drainingError());
  }

  /** Serves the requests of an agent's HTTP proxy, as the ingress of this process does. */
  private proxyServer(): CallServer {
    const router = (call: { target?: { app: string; deployment: string } }) => {
      if (this.isDraining) throw this.drainingError();
      if (!call.target) throw new NotFoundError('a proxy request names no deployment');
      return this.routers.get('ingress', call.target.app, call.target.deployment);
    };
    return {
      admit: () => null,
      release: () => {},
      unary: async (call, signal) =>
        router(call).call(call.method, call.args, {
          requestId: call.requestId,
          signal,
          routingKey: call.routingKey,
          multiplexedModelId: call.multiplexedModelId,
        }),
      stream: (call, signal) => {
        try {
          return router(call).stream(call.method, call.args, {
            requestId: call.requestId,
            signal,
            routingKey: call.routingKey,
            multiplexedModelId: call.multiplexedModelId,
          });
        } catch (err) {
          return rejectStream(err as Error);
        }
      },
    };
  }

  /**
   * Direct links between replicas (see StartServeOptions.directLinks), and the handle calls relayed
   * through this process instead, by calling deployment ('app/deployment').
   */
  linkStats(): LinkStats & { relayed: Record<string, number> } {
    return { ...this.links.stats(), relayed: Object.fromEntries(this.relayed) };
  }

  /** Serves the handle calls that replicas of `caller` relay to us. */
  private relay(app: string, caller: string): CallServer {
    const key = `${app}/${caller}`;
    const router = (call: IncomingCall) => {
      this.relayed.set(key, (this.relayed.get(key) ?? 0) + 1);
      return this.routers.get(caller, call.target!.app, call.target!.deployment);
    };
    return {
      admit: () => null,
      release: () => {},
      unary: (call, signal) =>
        router(call).call(call.method, call.args, {
          requestId: call.requestId,
          signal,
          routingKey: call.routingKey,
          multiplexedModelId: call.multiplexedModelId,
        }),
      stream: (call, signal) =>
        router(call).stream(call.method, call.args, {
          requestId: call.requestId,
          signal,
          routingKey: call.routingKey,
          multiplexedModelId: call.multiplexedModelId,
        }),
    };
  }

  private drainingError(): UnavailableError {
    return new UnavailableError('serve instance is shutting down', { draining: true });
  }
}

/** The leader fields of a head's status (contract/status.ts). */
export type HaStatusFields = Pick<ServeStatus, 'leader' | 'leaderHead' | 'state'>;

function withPrefixes(applications: ApplicationSpec[]) {
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

async function* rejectStream(err: Error): AsyncGenerator<never> {
  throw err;
}

/** Starts the applications and resolves once all are healthy (or rejects with the cause, having stopped everything). */
export async function startServe(options: StartServeOptions): Promise<ServeInstance> {
  const instance = new ServeInstance(options);
  try {
    await instance.cluster?.listening;
    await instance.ready(options.startupTimeoutS);
  } catch (err) {
    await instance.shutdown();
    throw err;
  }
  return instance;
}

export interface RunOptions extends Omit<StartServeOptions, 'applications'> {
  /** Default: 'default'. */
  name?: string;
  /** Default: '/'. */
  routePrefix?: string;
}

export const serve = {
  /** One application, like Ray's serve.run. */
  run(app: Application, options: RunOptions = {}): Promise<ServeInstance> {
    const { name = 'default', routePrefix = '/', ...rest } = options;
    return startServe({ ...rest, applications: [{ name, routePrefix, app }] });
  },
};
