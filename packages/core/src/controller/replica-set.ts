/**
 * The replicas of one deployment and their lifecycle: STARTING (actor up, constructor running) →
 * RUNNING → UNHEALTHY (a failed health check; replaced after healthCheckFailureThreshold in a row) →
 * STOPPING (draining, then the user's dispose()) → STOPPED (reaped by DeploymentState). Every control
 * call is raced against the actor's exit and a timeout, because comlink alone would wait forever on a
 * dead actor.
 *
 * Each record carries the deployment version it was started with (rolling updates replace the others)
 * and the userConfig it last applied (a userConfig-only change reaches it through reconfigure()).
 */
import type { ActorRef, ReplicaInfo } from '../actor/actor-ref.js';
import type { Allocation } from './placement.js';
import { USAGE_METRIC_NAMES } from './cost-ledger.js';
import type { DeploymentSpec } from '../contract/deployment-options.js';
import type { ReplicaState, ReplicaStatusInfo } from '../contract/status.js';
import type { RuntimeEvents } from '../runtime-events.js';
import type { MultiplexedReport } from '../multiplexed.js';

/** Time a replica has to load its module and run its constructor. */
const START_TIMEOUT_MS = 120_000;
/** Time the user's dispose() has before the actor is killed all the same. */
const DISPOSE_TIMEOUT_MS = 10_000;

export class ReplicaRecord {
  state: ReplicaState = 'STARTING';
  info: ReplicaInfo | undefined;
  ongoing = 0;
  healthFailures = 0;
  nextHealthAtMs = 0;
  nextStatsAtMs = 0;
  /** A health check in flight (a stats poll has its own flag: a poll stuck on a frozen replica must not hold the next check back). */
  probing = false;
  polling = false;
  /** The user's autoscalingMetrics() as last reported. */
  metrics: Record<string, number> | undefined;
  /** Its @multiplexed models as last reported (multiplexed.ts); undefined: none in use. */
  models: MultiplexedReport | undefined;
  /** JSON of the userConfig the replica runs with; reconfiguring while a change is in flight. */
  userConfigKey: string;
  reconfiguring = false;
  readonly startedAtMs = Date.now();
  /** A re-adopted replica's node, until placement has charged its resources there. */
  adoptedOn: string | undefined;

  constructor(
    readonly id: string,
    readonly actor: ActorRef,
    public alloc: Allocation | undefined,
    readonly version: string,
    userConfig: unknown,
  ) {
    this.userConfigKey = configKey(userConfig);
  }

  describe(): ReplicaStatusInfo {
    return {
      id: this.id,
      state: this.state,
      placement: this.actor.kind,
      node: this.actor.node ?? 'local',
      pid: this.info?.pid ?? this.actor.pid,
      ongoing: this.ongoing,
      startedAtMs: this.startedAtMs,
      ...(this.models ? { models: { ...this.models, ids: [...this.models.ids] } } : {}),
    };
  }
}

export interface ReplicaSetHooks {
  onRunning(record: ReplicaRecord): void;
  onStartFailed(record: ReplicaRecord, err: Error): void;
}

export class ReplicaSet {
  private readonly records: ReplicaRecord[] = [];
  info: ReplicaInfo | undefined;

  constructor(
    private spec: DeploymentSpec,
    private readonly events: RuntimeEvents,
    private readonly hooks: ReplicaSetHooks,
  ) {}

  /** A new spec from a rolling update; replicas started from now on use it. */
  setSpec(spec: DeploymentSpec): void {
    this.spec = spec;
  }

  get all(): readonly ReplicaRecord[] {
    return this.records;
  }

  live(): ReplicaRecord[] {
    return this.records.filter((r) => r.state === 'STARTING' || r.state === 'RUNNING' || r.state === 'UNHEALTHY');
  }

  routable(): ReplicaRecord[] {
    return this.records.filter((r) => r.state === 'RUNNING');
  }

  ongoing(): number {
    return this.records.reduce((n, r) => n + (r.state === 'RUNNING' ? r.ongoing : 0), 0);
  }

  /** The RUNNING replicas' last reports, summed (an autoscaling sample). */
  load(): { ongoing: number; custom: Record<string, number>; reporting: number } {
    const custom: Record<string, number> = {};
    let reporting = 0;
    for (const r of this.routable()) {
      reporting++;
      for (const [k, v] of Object.entries(r.metrics ?? {}))
        if (!USAGE_METRIC_NAMES.has(k)) custom[k] = (custom[k] ?? 0) + v; // counters for cost, not load
    }
    return { ongoing: this.ongoing(), custom, reporting };
  }

  /** Sends the spec's userConfig to RUNNING replicas that run an older one (no restart). */
  syncUserConfig(): void {
    const key = configKey(this.spec.options.userConfig);
    for (const r of this.routable()) {
      if (r.reconfiguring || r.userConfigKey === key) continue;
      void this.reconfigure(r, this.spec.options.userConfig, key);
    }
  }

  /** True while some RUNNING replica still runs an older userConfig. */
  reconfigPending(): boolean {
    const key = configKey(this.spec.options.userConfig);
    return this.routable().some((r) => r.userConfigKey !== key);
  }

  counts() {
    const c = { starting: 0, running: 0, unhealthy: 0, stopping: 0 };
    for (const r of this.records) {
      if (r.state === 'STARTING') c.starting++;
      else if (r.state === 'RUNNING') c.running++;
      else if (r.state === 'UNHEALTHY') c.unhealthy++;
      else if (r.state === 'STOPPING') c.stopping++;
    }
    return c;
  }

  start(id: string, actor: ActorRef, alloc: Allocation, version: string): void {
    const record = new ReplicaRecord(id, actor, alloc, version, this.spec.options.userConfig);
    this.records.push(record);
    this.setState(record, 'STARTING');
    void actor.exited.then((reason) => this.onExit(record, reason));
    void this.initialize(record);
  }

  /**
   * A replica that outlived the previous controller (on an agent): STARTING until it answers a health
   * check, then RUNNING with the info the checkpoint kept; stopped if it does not answer.
   */
  adopt(id: string, actor: ActorRef, version: string, info: ReplicaInfo, nodeId: string): void {
    const record = new ReplicaRecord(id, actor, undefined, version, this.spec.options.userConfig);
    record.adoptedOn = nodeId;
    this.records.push(record);
    this.setState(record, 'STARTING', 're-adopting after a controller restart');
    void actor.exited.then((reason) => this.onExit(record, reason));
    void settle(actor, actor.control.checkHealth(), this.spec.options.healthCheckTimeoutS * 1000).then(
      () => {
        if (record.state !== 'STARTING') return;
        record.info = info;
        this.info ??= info;
        this.setState(record, 'RUNNING', 're-adopted');
        record.nextHealthAtMs = Date.now() + this.spec.options.healthCheckPeriodS * 1000;
        this.hooks.onRunning(record);
      },
      (err: Error) => {
        if (record.state === 'STARTING') void this.stop(record, `could not be re-adopted: ${err.message}`);
      },
    );
  }

  /** Removes STOPPED records, handing each to `release` (frees its placement). */
  reap(release: (r: ReplicaRecord) => void): void {
    for (let i = this.records.length - 1; i >= 0; i--) {
      const r = this.records[i]!;
      if (r.state === 'STOPPED') {
        release(r);
        this.records.splice(i, 1);
      }
    }
  }

  /** Health checks and stats polls that are due. */
  probe(nowMs: number): void {
    const o = this.spec.options;
    const statsEveryMs = (o.autoscaling?.metricsIntervalS ?? 1) * 1000;
    for (const r of this.records) {
      if (r.state !== 'RUNNING' && r.state !== 'UNHEALTHY') continue;
      if (nowMs >= r.nextHealthAtMs && !r.probing) {
        r.nextHealthAtMs = nowMs + o.healthCheckPeriodS * 1000;
        void this.checkHealth(r);
      } else if (nowMs >= r.nextStatsAtMs && !r.polling) {
        r.nextStatsAtMs = nowMs + statsEveryMs;
        void this.pollStats(r);
      }
    }
  }

  async stop(r: ReplicaRecord, reason: string): Promise<void> {
    if (r.state === 'STOPPING' || r.state === 'STOPPED') return r.actor.exited.then(() => undefined);
    this.setState(r, 'STOPPING', reason);
    const graceMs = this.spec.options.gracefulShutdownTimeoutS * 1000;
    // A replica that died or hangs while draining (or disposing) is killed all the same.
    await settle(r.actor, r.actor.control.drain(graceMs), graceMs + 1000).catch(() => undefined);
    await settle(r.actor, r.actor.control.dispose(), DISPOSE_TIMEOUT_MS).catch(() => undefined);
    await r.actor.kill();
  }

  /** Stops a replica that cannot answer: no drain, no dispose(). */
  private async kill(r: ReplicaRecord, reason: string): Promise<void> {
    if (r.state === 'STOPPING' || r.state === 'STOPPED') return;
    this.setState(r, 'STOPPING', reason);
    await r.actor.kill();
  }

  async stopAll(reason: string): Promise<void> {
    await Promise.all(this.records.map((r) => this.stop(r, reason)));
  }

  private async initialize(r: ReplicaRecord): Promise<void> {
    const { app, name, className, modulePath, args, options } = this.spec;
    try {
      const info = await settle(
        r.actor,
        r.actor.control.initialize({
          replicaId: r.id,
          app,
          deployment: name,
          className,
          modulePath,
          args,
          maxOngoingRequests: options.maxOngoingRequests,
          userConfig: options.userConfig,
          gpuIds: r.alloc?.gpuShares.map((g) => g.id) ?? [],
          ...(options.cost ? { cost: options.cost } : {}),
        }),
        START_TIMEOUT_MS,
      );
      if (r.state !== 'STARTING') return;
      r.info = info;
      this.info ??= info;
      this.setState(r, 'RUNNING');
      r.nextHealthAtMs = Date.now() + options.healthCheckPeriodS * 1000;
      this.hooks.onRunning(r);
    } catch (err) {
      if (r.state !== 'STARTING') return;
      this.hooks.onStartFailed(r, err as Error);
      void this.stop(r, `failed to start: ${(err as Error).message}`);
    }
  }

  /**
   * One health check. After healthCheckFailureThreshold failures in a row the replica is replaced: stopped
   * gracefully when its checkHealth() said no (it still answers, so it can drain), killed at once when it
   * did not answer in time (frozen, or its loop blocked: drain and dispose() could not be answered
   * either, and its requests in flight would wait out gracefulShutdownTimeoutS for nothing). Its channel
   * then closes, which fails those requests with ActorDiedError (or retries them where nothing was sent).
   */
  private async checkHealth(r: ReplicaRecord): Promise<void> {
    r.probing = true;
    const o = this.spec.options;
    try {
      await settle(r.actor, r.actor.control.checkHealth(), o.healthCheckTimeoutS * 1000);
      r.healthFailures = 0;
      if (r.state === 'UNHEALTHY') this.setState(r, 'RUNNING');
    } catch (err) {
      if (r.state !== 'RUNNING' && r.state !== 'UNHEALTHY') return;
      r.healthFailures++;
      const why = `health check failed (${r.healthFailures}/${o.healthCheckFailureThreshold}): ${(err as Error).message}`;
      if (r.healthFailures < o.healthCheckFailureThreshold) {
        if (r.state === 'RUNNING') this.setState(r, 'UNHEALTHY', why);
      } else if (err instanceof SettleTimeout) void this.kill(r, `${why}; not answering, killed`);
      else void this.stop(r, why);
    } finally {
      r.probing = false;
    }
  }

  private async pollStats(r: ReplicaRecord): Promise<void> {
    r.polling = true;
    try {
      const stats = await settle(r.actor, r.actor.control.stats(), this.spec.options.healthCheckTimeoutS * 1000);
      r.ongoing = stats.ongoing;
      r.metrics = stats.metrics;
      r.models = stats.models;
      for (const b of stats.batches) {
        this.events.emit('batch', { app: this.spec.app, deployment: this.spec.name, method: b.method, size: b.size });
      }
    } catch {
      // A missed poll is harmless; health checks decide about the replica.
    } finally {
      r.polling = false;
    }
  }

  private async reconfigure(r: ReplicaRecord, userConfig: unknown, key: string): Promise<void> {
    r.reconfiguring = true;
    try {
      await settle(r.actor, r.actor.control.reconfigure(userConfig), this.spec.options.healthCheckTimeoutS * 1000);
      r.userConfigKey = key;
      this.events.emit('replica-state', {
        app: this.spec.app,
        deployment: this.spec.name,
        replicaId: r.id,
        state: r.state,
        reason: 'reconfigured',
      });
    } catch (err) {
      // Its replacement starts with the new userConfig through initialize().
      if (r.state === 'RUNNING' || r.state === 'UNHEALTHY')
        void this.stop(r, `reconfigure failed: ${(err as Error).message}`);
    } finally {
      r.reconfiguring = false;
    }
  }

  private onExit(r: ReplicaRecord, reason: string): void {
    const expected = r.state === 'STOPPING';
    this.setState(r, 'STOPPED', expected ? undefined : `died: ${reason}`);
  }

  private setState(r: ReplicaRecord, state: ReplicaState, reason?: string): void {
    if (r.state === 'STOPPED' && state !== 'STOPPED') return;
    r.state = state;
    this.events.emit('replica-state', {
      app: this.spec.app,
      deployment: this.spec.name,
      replicaId: r.id,
      state,
      reason,
    });
  }
}

function configKey(userConfig: unknown): string {
  return JSON.stringify(userConfig) ?? 'undefined';
}

/** The replica did not answer a control call in time. */
export class SettleTimeout extends Error {
  override readonly name = 'SettleTimeout';
}

/** `p`, unless the actor exits or `timeoutMs` passes first (then it rejects with SettleTimeout). */
export function settle<T>(actor: ActorRef, p: Promise<T>, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onExit = () => finish(() => reject(new Error(`replica exited (${String(actor.exitSignal.reason)})`)));
    const timer = setTimeout(
      () => finish(() => reject(new SettleTimeout(`timed out after ${timeoutMs} ms`))),
      timeoutMs,
    );
    const finish = (settleWith: () => void) => {
      clearTimeout(timer);
      actor.exitSignal.removeEventListener('abort', onExit);
      settleWith();
    };
    if (actor.exitSignal.aborted) return onExit();
    actor.exitSignal.addEventListener('abort', onExit, { once: true });
    p.then(
      (v) => finish(() => resolve(v)),
      (err) => finish(() => reject(err)),
    );
  });
}
