/**
 * One deployment's replicas, reconciled by update(): start missing replicas (where placement allows),
 * stop extra ones, health-check and poll stats of running ones, replace the dead and the unhealthy.
 * update() itself never awaits; the slow work (initialize, health check, drain) runs as tracked promises
 * whose results the next update() sees through the replica records.
 */
import { randomUUID } from 'node:crypto';
import { ReplicaSet, type ReplicaRecord } from './replica-set.js';
import { defaultAutoscalingPolicy, type AutoscalingPolicy, type AutoscalingState } from './autoscaling-policy.js';
import type { PlacementBook } from './placement.js';
import type { ActorRef } from '../actor/actor-ref.js';
import type { ResolvedDeploymentOptions } from '../config.js';
import type { DeploymentStatus, DeploymentStatusInfo } from '../ingress/ingress-target.js';
import type { RuntimeEvents } from '../runtime-events.js';
import type { RoutedReplica } from '../router/router.js';
import type { Allocation } from './placement.js';

export interface DeploymentSpec {
  app: string;
  name: string;
  className: string;
  modulePath: string;
  args: unknown[];
  options: ResolvedDeploymentOptions;
}

export interface DeploymentStateDeps {
  book: PlacementBook;
  events: RuntimeEvents;
  createActor(spec: DeploymentSpec, replicaId: string, alloc: Allocation): ActorRef;
  /** The RUNNING replicas changed, or the deployment failed (unavailable set). */
  publish(app: string, deployment: string, running: RoutedReplica[], unavailable?: string): void;
  /** Requests queued for this deployment in routers (for autoscaling). */
  queued(app: string, deployment: string): number;
  autoscalingPolicy?: AutoscalingPolicy;
}

export class DeploymentState {
  status: DeploymentStatus = 'UPDATING';
  message: string | undefined;
  targetReplicas: number;
  private readonly replicas: ReplicaSet;
  private constructorFailures = 0;
  private autoscalingState: AutoscalingState = {};
  private publishedKey = '';

  constructor(readonly spec: DeploymentSpec, private readonly deps: DeploymentStateDeps) {
    const o = spec.options;
    this.targetReplicas = o.numReplicas === 'auto' || o.autoscaling ? o.autoscaling!.initialReplicas : o.numReplicas;
    this.replicas = new ReplicaSet(spec, deps.events, {
      onRunning: () => { this.constructorFailures = 0; },
      onStartFailed: (record, err) => this.onStartFailed(record, err),
    });
  }

  get name(): string { return this.spec.name; }

  /** Methods and rawHttp of the class, once a replica has started. */
  get info() { return this.replicas.info; }

  update(nowMs: number): void {
    if (this.status === 'STOPPING') return;
    this.replicas.reap((record) => this.release(record));
    if (this.spec.options.autoscaling) this.autoscale(nowMs);
    if (this.status !== 'FAILED') this.scale();
    this.replicas.probe(nowMs);
    this.refreshStatus();
    this.publishIfChanged();
  }

  /** Stops every replica (drain within gracefulShutdownTimeoutS, then kill). */
  async stop(): Promise<void> {
    this.status = 'STOPPING';
    this.publishIfChanged(true);
    await this.replicas.stopAll('shutdown');
    for (const r of this.replicas.all) this.release(r);
  }

  describe(): DeploymentStatusInfo {
    const replicas = this.replicas.all.map((r) => r.describe());
    return { name: this.name, status: this.status, message: this.message, targetReplicas: this.targetReplicas,
      replicas, ongoing: replicas.reduce((n, r) => n + r.ongoing, 0), queued: this.deps.queued(this.spec.app, this.name) };
  }

  counts() {
    return this.replicas.counts();
  }

  private autoscale(nowMs: number): void {
    const policy = this.deps.autoscalingPolicy ?? defaultAutoscalingPolicy;
    const total = this.replicas.ongoing() + this.deps.queued(this.spec.app, this.name);
    const decision = policy({ config: this.spec.options.autoscaling!, currentReplicas: this.targetReplicas,
      totalRequests: total, nowMs }, this.autoscalingState);
    this.autoscalingState = decision.state;
    this.targetReplicas = decision.replicas;
  }

  private scale(): void {
    const live = this.replicas.live();
    const o = this.spec.options;
    for (let n = live.length; n < this.targetReplicas; n++) {
      const impossible = this.deps.book.unsatisfiable(o.resources);
      if (impossible) return this.fail(`cannot place a replica: ${impossible}`);
      const alloc = this.deps.book.allocate(o.resources);
      if (!alloc) {
        this.message = `waiting for resources (${JSON.stringify(o.resources)})`;
        return;
      }
      const id = `${this.spec.app}.${this.name}.${randomUUID().slice(0, 8)}`;
      let actor: ActorRef;
      try {
        actor = this.deps.createActor(this.spec, id, alloc);
      } catch (err) {
        this.deps.book.free(alloc);
        return this.fail(`cannot start a replica: ${(err as Error).message}`);
      }
      this.replicas.start(id, actor, alloc);
    }
    // Extra replicas: those still starting go first, then the least busy.
    const extra = live.length - this.targetReplicas;
    if (extra > 0) {
      const victims = [...live].sort((a, b) => rank(a) - rank(b)).slice(0, extra);
      for (const r of victims) void this.replicas.stop(r, 'scaled down');
    }
  }

  private onStartFailed(record: ReplicaRecord, err: Error): void {
    this.constructorFailures++;
    this.message = err.message;
    if (this.constructorFailures >= this.spec.options.maxConstructorRetries) {
      this.fail(`replica failed to start ${this.constructorFailures} times; last error: ${err.message}`);
    }
    void record;
  }

  private fail(message: string): void {
    this.status = 'FAILED';
    this.message = message;
    this.deps.events.emit('deployment-status', { app: this.spec.app, deployment: this.name, status: 'FAILED', message });
    this.publishIfChanged(true);
  }

  private refreshStatus(): void {
    if (this.status === 'FAILED' || this.status === 'STOPPING') return;
    const c = this.replicas.counts();
    const next: DeploymentStatus = c.running >= this.targetReplicas && c.unhealthy === 0 ? 'HEALTHY'
      : c.unhealthy > 0 && c.running === 0 ? 'UNHEALTHY' : 'UPDATING';
    if (next === 'HEALTHY') this.message = undefined;
    if (next !== this.status) {
      this.status = next;
      this.deps.events.emit('deployment-status', { app: this.spec.app, deployment: this.name, status: next, message: this.message });
    }
  }

  private publishIfChanged(force = false): void {
    const running = this.status === 'STOPPING' ? [] : this.replicas.routable();
    const key = `${this.status}|${running.map((r) => r.id).join(',')}`;
    if (!force && key === this.publishedKey) return;
    this.publishedKey = key;
    const maxOngoing = this.spec.options.maxOngoingRequests;
    const unavailable = this.status === 'FAILED' ? this.message : this.status === 'STOPPING' ? 'stopping' : undefined;
    this.deps.publish(this.spec.app, this.name, running.map((r) => ({ id: r.id, actor: r.actor, maxOngoing })), unavailable);
  }

  private release(record: ReplicaRecord): void {
    if (record.alloc) this.deps.book.free(record.alloc);
    record.alloc = undefined;
  }
}

function rank(r: ReplicaRecord): number {
  return r.state === 'STARTING' ? -1 : r.ongoing;
}
