/**
 * The controller: a reconciler loop (every tickMs, ≈100 ms) over the applications. Each update() call is
 * wrapped so that the loop never dies; the controller also owns placement and starts actors (threads or
 * processes, with CUDA_VISIBLE_DEVICES from placement) whose own handle calls go to `relay`. When a
 * target changes it saves its state to its store (store/controller-store.ts: the checkpoint file, or etcd)
 * at the end of the tick. It does not know which store it has, nor whether other heads stand by.
 */
import { createThreadActor } from '../actor/thread-actor.js';
import { createProcessActor } from '../actor/process-actor.js';
import { PlacementBook, cudaVisibleDevices, type NodeResources, type Allocation, type Placement } from './placement.js';
import { ApplicationState, buildSpecs } from './application-state.js';
import { ADOPT_GRACE_MS, type DeploymentStateDeps } from './deployment-state.js';
import type { DeploymentSpec } from '../contract/deployment-options.js';
import type { ActorRef } from '../actor/actor-ref.js';
import type { CallServer } from '../actor/rpc-peer.js';
import type { AppGraph } from '../application.js';
import type { ServeConfig } from '../config.js';
import type { RuntimeEvents } from '../runtime-events.js';
import type { AutoscalingPolicy } from '../contract/autoscaling.js';
import type { ControllerCheckpoint, StoredNode } from './checkpoint.js';
import type { ControllerStore } from './store/controller-store.js';
import { WarmPool } from './warm-pool.js';

export interface ControllerOptions {
  node: NodeResources;
  /** Reconcile period in ms. Default: 100. */
  tickMs?: number;
  events: RuntimeEvents;
  /** Serves the handle calls of replicas of (app, deployment). */
  relay(app: string, deployment: string): CallServer;
  publish: DeploymentStateDeps['publish'];
  publishModels?: DeploymentStateDeps['publishModels'];
  queued: DeploymentStateDeps['queued'];
  autoscalingPolicy?: AutoscalingPolicy;
  /** Errors caught in the loop. Default: console.error. */
  onError?: (err: unknown) => void;
  /** Where the state is saved (store/: a checkpoint file, or etcd). Default: none. */
  store?: ControllerStore;
  /** The cluster's agents, saved with the state. Default: none. */
  nodes?: () => StoredNode[];
  /** Placement over more nodes than this one (a cluster head's). Default: this node's PlacementBook. */
  placement?: Placement;
  /** Starts replicas whose allocation names another node (cluster/head.ts). Default: none. */
  remote?: RemoteActorFactory;
  /** Warm worker threads while an upscale waits out its delay (warm-pool.ts). Default: true. */
  prestartWorkers?: boolean;
  /** Called with every replica actor started here (not re-adopted ones), e.g. to set up direct links. Default: none. */
  onActor?(actor: ActorRef): void;
}

export interface RemoteActorFactory {
  createActor(spec: DeploymentSpec, id: string, alloc: Allocation, server: CallServer): ActorRef;
  /** Reconnects to a replica that outlived the previous controller on `nodeId`. */
  adoptActor?(id: string, nodeId: string, server: CallServer): ActorRef;
}

export class Controller {
  readonly book: PlacementBook;
  readonly apps = new Map<string, ApplicationState>();
  private timer: NodeJS.Timeout | undefined;
  private readonly deps: DeploymentStateDeps;
  private dirty = false;
  private restoredFrom: ControllerCheckpoint | undefined;
  /** Until this time, apps deployed after start() (serve deploy replaying the checkpoint) restore too. */
  private restoreUntilMs = 0;
  /** Worker threads warmed for upscales waiting out their delay (warm-pool.ts). */
  private readonly warm = new WarmPool({ create: (id, server) => createThreadActor({ id, server }) });
  private warmWanted = 0;

  constructor(private readonly options: ControllerOptions) {
    this.book = new PlacementBook(options.node);
    this.deps = {
      book: options.placement ?? this.book,
      events: options.events,
      publish: options.publish,
      ...(options.publishModels ? { publishModels: options.publishModels } : {}),
      queued: options.queued,
      autoscalingPolicy: options.autoscalingPolicy,
      createActor: (spec, id, alloc) => this.createActor(spec, id, alloc),
      prewarm: (spec, n) => {
        if (options.prestartWorkers !== false && spec.options.placement === 'thread' && n > 0) this.warmWanted += n;
      },
    };
    options.events.on('scaling-decision', () => {
      this.dirty = true;
    });
    // The checkpoint names the replicas on agents, which a restarted controller re-adopts.
    options.events.on('replica-state', () => {
      this.dirty = true;
    });
  }

  /**
   * The state of a controller that this one takes over (a checkpoint left by one that died, or the last
   * leader's state in etcd): deploy() and the sources to deploy again read it. Call before start().
   */
  restoreFrom(state: ControllerCheckpoint | undefined): void {
    this.restoredFrom = state;
  }

  /** True once start() ran (a standby head's controller waits until it leads). */
  get started(): boolean {
    return this.timer !== undefined;
  }

  /** Adds an application; its replicas start on the next tick. Throws DeploymentConfigError on bad options. */
  deploy(name: string, routePrefix: string, graph: AppGraph, config?: ServeConfig, source?: unknown): ApplicationState {
    const app = new ApplicationState(name, routePrefix, graph, config, this.deps, (err) => this.report(err));
    app.source = source;
    this.apps.set(name, app);
    const restoring = this.restoredFrom && (!this.timer || Date.now() < this.restoreUntilMs);
    const saved = restoring ? this.restoredFrom!.apps.find((a) => a.name === name) : undefined;
    if (saved && this.restoredFrom) this.restoredFrom.apps = this.restoredFrom.apps.filter((a) => a !== saved);
    // Restoring emits 'restored' decisions, which mark the checkpoint dirty; an app with nothing to
    // restore writes none until a target changes (nothing in it would differ from the user's code).
    for (const d of saved?.deployments ?? []) app.deployments.get(d.name)?.restore(d);
    return app;
  }

  /**
   * Moves to a new set of applications: known ones update in place (rolling updates, reconfigure),
   * new ones deploy, missing ones stop. Everything is validated before anything changes.
   */
  apply(apps: { name: string; routePrefix: string; graph: AppGraph }[], config?: ServeConfig): void {
    for (const a of apps) buildSpecs(a.name, a.graph, config);
    const names = new Set(apps.map((a) => a.name));
    for (const [name, app] of this.apps) {
      if (names.has(name)) continue;
      this.apps.delete(name);
      void app.stop().catch((err) => this.report(err));
    }
    for (const a of apps) {
      const known = this.apps.get(a.name);
      if (known) known.apply(a.routePrefix, a.graph, config);
      else this.deploy(a.name, a.routePrefix, a.graph, config);
    }
    this.dirty = true;
  }

  /** Adds applications or updates those of the same name; the others keep running. Validates first. */
  upsert(apps: { name: string; routePrefix: string; graph: AppGraph; source?: unknown }[], config?: ServeConfig): void {
    for (const a of apps) buildSpecs(a.name, a.graph, config);
    for (const a of apps) {
      const known = this.apps.get(a.name);
      if (known) {
        known.apply(a.routePrefix, a.graph, config);
        known.source = a.source;
      } else {
        this.deploy(a.name, a.routePrefix, a.graph, config, a.source);
      }
    }
    this.dirty = true;
  }

  /**
   * A rejoining agent still runs `actorIds` (this controller restarted): re-adopts those the checkpoint
   * names for that node and the current versions, returning their ids; the agent kills the others.
   */
  adopt(nodeId: string, actorIds: string[]): string[] {
    const adopted: string[] = [];
    const remote = this.options.remote;
    if (!remote?.adoptActor) return adopted;
    for (const id of actorIds) {
      for (const app of this.apps.values()) {
        const d = [...app.deployments.values()].find((x) => x.expects(nodeId, id));
        if (!d) continue;
        d.adopt(id, remote.adoptActor(id, nodeId, this.options.relay(app.name, d.name)));
        adopted.push(id);
        break;
      }
    }
    return adopted;
  }

  /** Apps of the dead controller's checkpoint deployed onto a running head (serve deploy), to deploy again. */
  restorableSources(): { name: string; source: unknown }[] {
    return (this.restoredFrom?.apps ?? [])
      .filter((a) => a.source !== undefined)
      .map((a) => ({ name: a.name, source: a.source }));
  }

  start(): void {
    if (this.timer) return;
    // The checkpoint describes the apps deployed at start-up, and those deployed onto the head that are
    // deployed again right after (restorableSources, within the adoption grace); later deploys start fresh.
    this.restoreUntilMs = Date.now() + ADOPT_GRACE_MS;
    if (!this.restoredFrom?.apps.some((a) => a.source !== undefined)) this.restoredFrom = undefined;
    this.tick();
    this.timer = setInterval(() => this.tick(), this.options.tickMs ?? 100);
  }

  tick(): void {
    const now = Date.now();
    this.warmWanted = 0;
    for (const app of this.apps.values()) {
      try {
        app.update(now);
      } catch (err) {
        this.report(err);
      }
    }
    if (this.warmWanted > 0) this.warm.warm(this.warmWanted, now);
    this.warm.expire(now);
    if (this.dirty) this.saveCheckpoint();
  }

  snapshot(): ControllerCheckpoint {
    return {
      format: 1,
      savedAtMs: Date.now(),
      pid: process.pid,
      apps: [...this.apps.values()].map((a) => ({
        name: a.name,
        routePrefix: a.routePrefix,
        ...(a.source === undefined ? {} : { source: a.source }),
        deployments: [...a.deployments.values()].map((d) => d.snapshot()),
      })),
      ...(this.options.nodes ? { nodes: this.options.nodes() } : {}),
    };
  }

  /** Stops the loop and every replica (each drains within its gracefulShutdownTimeoutS). */
  async dispose(): Promise<void> {
    const wasRunning = this.timer !== undefined;
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.apps.values()].map((a) => a.stop()).concat(this.warm.close()));
    // A clean stop leaves no checkpoint file (one found at start-up means the controller died); etcd keeps
    // the applications for the next leader, without the replicas just stopped. A standby that never led
    // has nothing of its own to retire.
    if (wasRunning) await this.options.store?.retire(this.snapshot()).catch((err) => this.report(err));
  }

  private saveCheckpoint(): void {
    this.dirty = false;
    const store = this.options.store;
    if (!store) return;
    // The file store writes synchronously inside save(); etcd's saves coalesce and wait out an outage.
    store.save(this.snapshot()).catch((err) => this.report(err));
  }

  private createActor(spec: DeploymentSpec, id: string, alloc: Allocation): ActorRef {
    const actor = this.startActor(spec, id, alloc);
    this.options.onActor?.(actor);
    return actor;
  }

  private startActor(spec: DeploymentSpec, id: string, alloc: Allocation): ActorRef {
    const server = this.options.relay(spec.app, spec.name);
    if (alloc.nodeId !== undefined && this.options.remote)
      return this.options.remote.createActor(spec, id, alloc, server);
    if (spec.options.placement === 'process') {
      const env: Record<string, string> = {};
      if (alloc.gpuShares.length > 0)
        env.CUDA_VISIBLE_DEVICES = cudaVisibleDevices(alloc, process.env.CUDA_VISIBLE_DEVICES);
      return createProcessActor({ id, server, env });
    }
    return this.warm.take(id, server) ?? createThreadActor({ id, server });
  }

  private report(err: unknown): void {
    (this.options.onError ?? ((e) => console.error('[flotilla controller]', e)))(err);
  }
}
