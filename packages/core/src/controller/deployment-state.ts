/**
 * One deployment's replicas, reconciled by update(): start missing replicas (where placement allows),
 * stop extra ones, health-check and poll stats of running ones, replace the dead and the unhealthy.
 * update() itself never awaits; the slow work (initialize, health check, drain) runs as tracked promises
 * whose results the next update() sees through the replica records.
 */
import { randomUUID } from 'node:crypto';
import { CostLedger } from './cost-ledger.js';
import { ReplicaSet, type ReplicaRecord } from './replica-set.js';
import { AutoscalingStateManager, type ScalingDecisionRecord } from './autoscaling-state.js';
import { planReplicas, type PlannedReplica } from './rolling-update.js';
import { rayDesiredReplicas } from './autoscaling-policy.js';
import type { AutoscalingPolicy, AutoscalingState } from '../contract/autoscaling.js';
import type { Placement } from './placement.js';
import type { ActorRef, ReplicaInfo } from '../actor/actor-ref.js';
import type { DeploymentStatus, DeploymentStatusInfo } from '../contract/status.js';
import type { RuntimeEvents } from '../runtime-events.js';
import type { ReplicaModelsReport, RoutedReplica } from '../router/router.js';
import type { Allocation } from './placement.js';
import type { DeploymentSpec } from '../contract/deployment-options.js';

export interface DeploymentStateDeps {
  book: Placement;
  events: RuntimeEvents;
  createActor(spec: DeploymentSpec, replicaId: string, alloc: Allocation): ActorRef;
  /** The RUNNING replicas changed, or the deployment failed (unavailable set). */
  publish(app: string, deployment: string, running: RoutedReplica[], unavailable?: string): void;
  /**
   * The RUNNING replicas' loaded @multiplexed models changed (ids most recently used first), for the
   * routers' model views (router/model-view.ts). Default: none.
   */
  publishModels?(app: string, deployment: string, reports: ReadonlyMap<string, ReplicaModelsReport>): void;
  /** Requests queued for this deployment in routers (for autoscaling). */
  queued(app: string, deployment: string): number;
  autoscalingPolicy?: AutoscalingPolicy;
  /** Asks for `n` more replicas' worker threads to be warmed (an upscale is waiting out its delay). Default: none. */
  prewarm?(spec: DeploymentSpec, n: number): void;
}

/** A RUNNING replica on an agent, which a restarted controller can re-adopt. */
export interface AdoptableReplica {
  id: string;
  node: string;
  version: string;
  info: ReplicaInfo;
}

/** What a controller checkpoint keeps of a deployment. */
export interface DeploymentSnapshot {
  name: string;
  version: string;
  targetReplicas: number;
  policyState?: AutoscalingState;
  decisions: ScalingDecisionRecord[];
  /** Replicas on agents, which survive the controller. Absent in older checkpoints. */
  replicas?: AdoptableReplica[];
}

/** How long a restored controller waits for agents to bring back their replicas before starting others. */
export const ADOPT_GRACE_MS = 30_000;

/** Decisions kept per deployment (oldest dropped first). */
const HISTORY = 20;

export class DeploymentState {
  status: DeploymentStatus = 'UPDATING';
  message: string | undefined;
  targetReplicas: number;
  readonly decisions: ScalingDecisionRecord[] = [];
  private readonly replicas: ReplicaSet;
  private autoscaler: AutoscalingStateManager | undefined;
  private constructorFailures = 0;
  private readonly cost = new CostLedger();
  private publishedKey = '';
  private publishedModelsKey = '';
  /** Replicas of the checkpoint that an agent may still bring back, counted toward the target until expiry. */
  private readonly expected = new Map<string, AdoptableReplica & { untilMs: number }>();

  constructor(
    public spec: DeploymentSpec,
    private readonly deps: DeploymentStateDeps,
  ) {
    const o = spec.options;
    this.targetReplicas = o.autoscaling ? o.autoscaling.initialReplicas : (o.numReplicas as number);
    if (o.autoscaling) this.autoscaler = new AutoscalingStateManager(o.autoscaling, o.autoscaling.policy);
    this.replicas = new ReplicaSet(spec, deps.events, {
      onRunning: () => {
        this.constructorFailures = 0;
      },
      onStartFailed: (record, err) => this.onStartFailed(record, err),
    });
  }

  get name(): string {
    return this.spec.name;
  }

  /** Actors of the RUNNING replicas, with their ids (metrics scrapes ask each). */
  runningActors(): Array<{ id: string; actor: ActorRef }> {
    return this.replicas.routable().map((r) => ({ id: r.id, actor: r.actor }));
  }

  /** Methods and rawHttp of the class, once a replica has started. */
  get info() {
    return this.replicas.info;
  }

  update(nowMs: number): void {
    if (this.status === 'STOPPING') return;
    this.accrueCost(nowMs); // before reaping: a stopped replica's last stretch is charged once
    this.replicas.reap((record) => this.release(record));
    this.placeAdopted(nowMs);
    if (this.autoscaler) this.autoscale(nowMs);
    if (this.status !== 'FAILED') this.scale();
    this.replicas.syncUserConfig();
    this.replicas.probe(nowMs);
    this.refreshStatus();
    this.publishIfChanged();
    this.publishModelsIfChanged();
  }

  /**
   * A new spec (ServeInstance.apply): a new version rolls the replicas (rolling-update.ts); a
   * userConfig-only change reaches the running replicas through reconfigure(); a new replica count or
   * autoscaling config only moves the target.
   */
  apply(spec: DeploymentSpec): void {
    const o = spec.options;
    if (spec.version !== this.spec.version && this.status === 'FAILED') {
      this.status = 'UPDATING';
      this.constructorFailures = 0;
    }
    this.spec = spec;
    this.replicas.setSpec(spec);
    if (o.autoscaling) {
      if (this.autoscaler) this.autoscaler.configure(o.autoscaling, o.autoscaling.policy);
      else this.autoscaler = new AutoscalingStateManager(o.autoscaling, o.autoscaling.policy);
    } else {
      this.autoscaler = undefined;
      this.setTarget({
        atMs: Date.now(),
        from: this.targetReplicas,
        to: o.numReplicas as number,
        reason: 'config',
        message: 'numReplicas changed by a new config',
      });
    }
    if (this.status === 'HEALTHY') this.status = 'UPDATING';
  }

  /** Stops every replica (drain within gracefulShutdownTimeoutS, then kill). */
  async stop(): Promise<void> {
    this.status = 'STOPPING';
    this.publishIfChanged(true);
    await this.replicas.stopAll('shutdown');
    for (const r of this.replicas.all) this.release(r);
  }

  /** Replica-hours and reported tokens since the last tick, at the deployment's prices (cost-ledger.ts). */
  private accrueCost(nowMs: number): void {
    const prices = this.spec.options.cost;
    if (!prices) return;
    this.cost.observe(
      this.replicas.all.map((r) => ({
        id: r.id,
        startedAtMs: r.startedAtMs,
        alive: r.state !== 'STOPPED',
        ...(r.metrics ? { metrics: r.metrics } : {}),
      })),
      prices,
      nowMs,
    );
  }

  describe(): DeploymentStatusInfo {
    const replicas = this.replicas.all.map((r) => r.describe());
    return {
      ...(this.spec.options.cost ? { cost: { ...this.cost.totals } } : {}),
      name: this.name,
      status: this.status,
      message: this.message,
      targetReplicas: this.targetReplicas,
      replicas,
      ongoing: replicas.reduce((n, r) => n + r.ongoing, 0),
      queued: this.deps.queued(this.spec.app, this.name),
      decisions: this.decisions.map((d) => ({ ...d })),
    };
  }

  counts() {
    return this.replicas.counts();
  }

  snapshot(): DeploymentSnapshot {
    const replicas = this.replicas
      .routable()
      .filter((r) => r.actor.kind === 'remote' && r.info && r.actor.node)
      .map((r): AdoptableReplica => ({ id: r.id, node: r.actor.node!, version: r.version, info: r.info! }));
    return {
      name: this.name,
      version: this.spec.version,
      targetReplicas: this.targetReplicas,
      policyState: this.autoscaler?.state,
      decisions: [...this.decisions],
      replicas,
    };
  }

  /** True when `id` is a replica of the checkpoint, on `nodeId`, of the current version. */
  expects(nodeId: string, id: string): boolean {
    const e = this.expected.get(id);
    return e !== undefined && e.node === nodeId && e.version === this.spec.version;
  }

  /** Takes back a replica that outlived the previous controller (see expects()). */
  adopt(id: string, actor: ActorRef): void {
    const e = this.expected.get(id)!;
    this.expected.delete(id);
    this.replicas.adopt(id, actor, e.version, e.info, e.node);
  }

  /** Takes an autoscaled target and history from a checkpoint (a fixed count comes from the config). */
  restore(s: DeploymentSnapshot): void {
    this.decisions.splice(0, this.decisions.length, ...s.decisions.slice(-HISTORY));
    const untilMs = Date.now() + ADOPT_GRACE_MS;
    for (const r of s.replicas ?? []) {
      if (r.version !== this.spec.version) continue;
      this.expected.set(r.id, { ...r, untilMs });
      // Routes (methods) are known before any replica answers, so proxies do not 404 meanwhile.
      this.replicas.info ??= r.info;
    }
    const a = this.spec.options.autoscaling;
    if (!a || !this.autoscaler) return;
    this.autoscaler.state = s.policyState ?? {};
    const to = Math.min(a.maxReplicas, Math.max(a.minReplicas, s.targetReplicas));
    this.setTarget({
      atMs: Date.now(),
      from: this.targetReplicas,
      to,
      reason: 'restored',
      message: 'target from the controller checkpoint',
    });
  }

  private autoscale(nowMs: number): void {
    const queuedNow = this.deps.queued(this.spec.app, this.name);
    this.autoscaler!.report(nowMs, () => ({ ...this.replicas.load(), queued: queuedNow }));
    const decision = this.autoscaler!.update(
      nowMs,
      this.targetReplicas,
      this.replicas.counts().running,
      queuedNow,
      this.deps.autoscalingPolicy,
    );
    if (decision) this.setTarget(decision);
    this.prewarm(queuedNow);
  }

  /**
   * Boots worker threads for the replicas an upscale would add, before the decision: the count the
   * policy would move to once its delay passes, or, as soon as requests queue in callers (before a
   * load sample has seen them), Ray's formula on the load right now. Only warms; decides nothing.
   */
  private prewarm(queuedNow: number): void {
    const a = this.spec.options.autoscaling!;
    let wanted = this.autoscaler!.pendingUp ?? 0;
    if (queuedNow > 0 && this.targetReplicas > 0) {
      wanted = Math.max(wanted, rayDesiredReplicas(a, this.targetReplicas, this.replicas.ongoing() + queuedNow));
    }
    wanted = Math.min(wanted, a.maxReplicas);
    const have = Math.max(this.targetReplicas, this.replicas.live().length);
    if (wanted > have) this.deps.prewarm?.(this.spec, wanted - have);
  }

  private setTarget(d: ScalingDecisionRecord): void {
    if (d.to === d.from) return;
    this.targetReplicas = d.to;
    this.decisions.push(d);
    if (this.decisions.length > HISTORY) this.decisions.splice(0, this.decisions.length - HISTORY);
    this.deps.events.emit('scaling-decision', { app: this.spec.app, deployment: this.name, ...d });
  }

  private scale(): void {
    const live = this.replicas.live();
    const plan = planReplicas(
      live.map(
        (r): PlannedReplica => ({
          id: r.id,
          version: r.version,
          state: r.state as PlannedReplica['state'],
          ongoing: r.ongoing,
        }),
      ),
      this.targetReplicas,
      this.spec.version,
    );
    for (const id of plan.stop) {
      const r = live.find((x) => x.id === id)!;
      void this.replicas.stop(r, r.version === this.spec.version ? 'scaled down' : 'replaced by a new version');
    }
    // Replicas an agent may still bring back (a restarted controller) take their places meanwhile.
    for (let n = this.expected.size; n < plan.start; n++) if (!this.startReplica()) return;
  }

  /** Charges re-adopted replicas to their node once it is placeable again; forgets expected ones past the grace. */
  private placeAdopted(nowMs: number): void {
    for (const [id, e] of this.expected) if (nowMs >= e.untilMs) this.expected.delete(id);
    for (const r of this.replicas.all) {
      if (r.adoptedOn === undefined || r.alloc) continue;
      const alloc = this.deps.book.allocateOn?.(r.adoptedOn, this.spec.options.resources);
      if (alloc) {
        r.alloc = alloc;
        r.adoptedOn = undefined;
      }
    }
  }

  /** False when no replica could start (no resources now, or never: the deployment failed). */
  private startReplica(): boolean {
    const o = this.spec.options;
    const impossible = this.deps.book.unsatisfiable(o.resources);
    if (impossible) {
      this.fail(`cannot place a replica: ${impossible}`);
      return false;
    }
    const alloc = this.deps.book.allocate(o.resources);
    if (!alloc) {
      this.message = this.deps.book.explain?.(o.resources) ?? `waiting for resources (${JSON.stringify(o.resources)})`;
      return false;
    }
    const id = `${this.spec.app}.${this.name}.${randomUUID().slice(0, 8)}`;
    let actor: ActorRef;
    try {
      actor = this.deps.createActor(this.spec, id, alloc);
    } catch (err) {
      this.deps.book.free(alloc);
      this.fail(`cannot start a replica: ${(err as Error).message}`);
      return false;
    }
    this.replicas.start(id, actor, alloc, this.spec.version);
    return true;
  }

  private onStartFailed(record: ReplicaRecord, err: Error): void {
    this.constructorFailures++;
    this.message = err.message;
    if (this.constructorFailures >= this.spec.options.maxConstructorRetries) {
      this.fail(`replica failed to start ${this.constructorFailures} times; last error: ${err.message}`);
    }
    void record;
  }

  /**
   * Stops starting replicas. Replicas already RUNNING (the previous version, when a rollout fails) stay
   * and keep serving until a new config is applied; only a deployment left without any is unavailable.
   */
  private fail(why: string): void {
    const previous = this.replicas.routable().some((r) => r.version !== this.spec.version);
    const message = previous ? `rolling update failed, the previous version keeps serving: ${why}` : why;
    this.status = 'FAILED';
    this.message = message;
    this.deps.events.emit('deployment-status', {
      app: this.spec.app,
      deployment: this.name,
      status: 'FAILED',
      message,
    });
    this.publishIfChanged(true);
  }

  private refreshStatus(): void {
    if (this.status === 'FAILED' || this.status === 'STOPPING') return;
    const c = this.replicas.counts();
    const settled =
      this.replicas.live().every((r) => r.version === this.spec.version) && !this.replicas.reconfigPending();
    const next: DeploymentStatus =
      c.running >= this.targetReplicas && c.unhealthy === 0 && settled
        ? 'HEALTHY'
        : c.unhealthy > 0 && c.running === 0
          ? 'UNHEALTHY'
          : 'UPDATING';
    if (next === 'HEALTHY') this.message = undefined;
    if (next !== this.status) {
      this.status = next;
      this.deps.events.emit('deployment-status', {
        app: this.spec.app,
        deployment: this.name,
        status: next,
        message: this.message,
      });
    }
  }

  private publishIfChanged(force = false): void {
    const running = this.status === 'STOPPING' ? [] : this.replicas.routable();
    const key = `${this.status}|${running.map((r) => r.id).join(',')}`;
    if (!force && key === this.publishedKey) return;
    this.publishedKey = key;
    const maxOngoing = this.spec.options.maxOngoingRequests;
    const unavailable =
      this.status === 'FAILED' && running.length === 0
        ? this.message
        : this.status === 'STOPPING'
          ? 'stopping'
          : undefined;
    this.deps.publish(
      this.spec.app,
      this.name,
      running.map((r) => ({ id: r.id, actor: r.actor, maxOngoing })),
      unavailable,
    );
  }

  /** After the replica set: a router learns models only of replicas it already knows. */
  private publishModelsIfChanged(): void {
    if (!this.deps.publishModels) return;
    const reports = new Map<string, ReplicaModelsReport>();
    for (const r of this.replicas.routable())
      if (r.models) reports.set(r.id, { ids: r.models.ids, capacity: r.models.capacity });
    if (reports.size === 0 && this.publishedModelsKey === '') return;
    const key = [...reports].map(([id, m]) => `${id}:${m.capacity}:${m.ids.join('\u0001')}`).join('\u0002');
    if (key === this.publishedModelsKey) return;
    this.publishedModelsKey = key;
    this.deps.publishModels(this.spec.app, this.name, reports);
  }

  private release(record: ReplicaRecord): void {
    if (record.alloc) this.deps.book.free(record.alloc);
    record.alloc = undefined;
  }
}
