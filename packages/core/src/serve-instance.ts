/**
 * The programmatic API: `startServe({ applications })` / `serve.run(app)` start a controller and its
 * replicas and return a ServeInstance, which is what the proxies and the CLI talk to (IngressTarget).
 *
 * Its parts (controller, routers, links, cluster head) are built in serve-runtime.ts; the options it
 * takes and their checks are in serve-options.ts; what it reads off its applications (readiness, stats,
 * replica metrics) in serve-reports.ts; the CallServers for agents' proxies and relayed handle calls in
 * serve-call-servers.ts.
 */
import type { Application } from './application.js';
import { loadServeConfig, type ServeConfig } from './config.js';
import { NotFoundError, UnavailableError } from './errors.js';
import { createHandle, type DeploymentHandle, type HandleBackend } from './handle.js';
import type { Controller } from './controller/controller.js';
import type { ControllerCheckpoint } from './controller/checkpoint.js';
import { FileControllerStore } from './controller/store/file-store.js';
import type { RouterSet } from './router/router-set.js';
import { RuntimeEvents, type DeploymentStats, type RuntimeEventMap } from './runtime-events.js';
import type { CallServer } from './actor/rpc-peer.js';
import type { LinkBroker, LinkStats } from './actor/link-broker.js';
import type { IngressTarget } from './ingress/ingress-target.js';
import type { ReplicaMetrics, ServeStatus } from './contract/status.js';
import type { RouteInfo } from './contract/routes.js';
import type { ClusterHead } from './cluster/head.js';
import { buildServeRuntime } from './serve-runtime.js';
import { proxyCallServer, rejectStream, relayCallServer } from './serve-call-servers.js';
import { collectReplicaMetrics, deploymentStats, waitReady } from './serve-reports.js';
import {
  assertPrefixesFree,
  withPrefixes,
  type ApplicationSpec,
  type ApplyOptions,
  type HaStatusFields,
  type RunOptions,
  type StartServeOptions,
} from './serve-options.js';

export type { ApplicationSpec, ApplyOptions, HaStatusFields, RunOptions, StartServeOptions } from './serve-options.js';

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
    const runtime = buildServeRuntime(
      options,
      apps.map((a) => `${a.name}@${a.routePrefix}`),
      this.events,
      (app, deployment) => this.relay(app, deployment),
    );
    this.controller = runtime.controller;
    this.routers = runtime.routers;
    this.links = runtime.links;
    this.cluster = runtime.cluster;
    const store = runtime.store;
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
    assertPrefixesFree(given, [...this.controller.apps.values()]);
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
  replicaMetrics(): Promise<ReplicaMetrics[]> {
    return collectReplicaMetrics(this.controller.apps);
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
    return deploymentStats(this.controller.apps, (app, dep) => this.routers.inFlight(app, dep));
  }

  /** Resolves when every application is RUNNING; rejects when one fails to deploy or on timeout. */
  ready(timeoutS = 120): Promise<void> {
    return waitReady(this.controller.apps, timeoutS);
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
    return proxyCallServer((call) => {
      if (this.isDraining) throw this.drainingError();
      if (!call.target) throw new NotFoundError('a proxy request names no deployment');
      return this.routers.get('ingress', call.target.app, call.target.deployment);
    });
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
    return relayCallServer((call) => {
      this.relayed.set(key, (this.relayed.get(key) ?? 0) + 1);
      return this.routers.get(caller, call.target!.app, call.target!.deployment);
    });
  }

  private drainingError(): UnavailableError {
    return new UnavailableError('serve instance is shutting down', { draining: true });
  }
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

export const serve = {
  /** One application, like Ray's serve.run. */
  run(app: Application, options: RunOptions = {}): Promise<ServeInstance> {
    const { name = 'default', routePrefix = '/', ...rest } = options;
    return startServe({ ...rest, applications: [{ name, routePrefix, app }] });
  },
};
