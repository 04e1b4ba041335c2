/**
 * One deployment's autoscaling: the load reports (a sample every metricsIntervalS of what the
 * replicas last reported and what the callers' routers hold), the look-back window averaged into the
 * policy's context and the policy's own state. The controller calls update() every tick; the policy
 * itself stays pure (autoscaling-policy.ts). The history of decisions lives in DeploymentState, which
 * also records changes made by a new config.
 */
import { defaultAutoscalingPolicy } from './autoscaling-policy.js';
import type {
  AutoscalingDecision,
  AutoscalingMetrics,
  AutoscalingPolicy,
  AutoscalingReason,
  AutoscalingState,
} from '../contract/autoscaling.js';
import type { ResolvedAutoscaling } from '../contract/autoscaling.js';

/** One load report, summed over the deployment's replicas and callers. */
export interface LoadSample {
  atMs: number;
  ongoing: number;
  queued: number;
  custom: Record<string, number>;
  reporting: number;
}

/** A change of the target replica count, as `serve status` and /-/status show it. */
export interface ScalingDecisionRecord {
  atMs: number;
  from: number;
  to: number;
  reason: AutoscalingReason;
  message: string;
}

export class AutoscalingStateManager {
  private samples: LoadSample[] = [];
  private policyState: AutoscalingState = {};
  private nextSampleAtMs = 0;
  /** The count an upscale waiting out its delay would move to (the last update's), else undefined. */
  pendingUp: number | undefined;

  constructor(
    private config: ResolvedAutoscaling,
    private policy: AutoscalingPolicy | undefined,
  ) {}

  /** A new config (rolling update): the window is kept, the delays start over. */
  configure(config: ResolvedAutoscaling, policy: AutoscalingPolicy | undefined): void {
    this.config = config;
    this.policy = policy;
    this.policyState = {};
  }

  /** Takes a sample when one is due; `read` is only called then. */
  report(nowMs: number, read: () => Omit<LoadSample, 'atMs'>): void {
    if (nowMs < this.nextSampleAtMs) return;
    this.nextSampleAtMs = nowMs + this.config.metricsIntervalS * 1000;
    this.samples.push({ atMs: nowMs, ...read() });
    const oldest = nowMs - Math.max(this.config.lookBackPeriodS, this.config.metricsIntervalS) * 1000;
    while (this.samples.length > 1 && this.samples[0]!.atMs < oldest) this.samples.shift();
  }

  /** Averages of the samples in the look-back window. */
  window(): AutoscalingMetrics {
    const n = this.samples.length;
    const out: AutoscalingMetrics = { ongoing: 0, queued: 0, custom: {}, reporting: 0 };
    if (n === 0) return out;
    for (const s of this.samples) {
      out.ongoing += s.ongoing / n;
      out.queued += s.queued / n;
      out.reporting += s.reporting / n;
      for (const [k, v] of Object.entries(s.custom)) out.custom[k] = (out.custom[k] ?? 0) + v / n;
    }
    return out;
  }

  /** Runs the policy; returns the decision that changed the target, or undefined when it stays. */
  update(
    nowMs: number,
    current: number,
    running: number,
    queuedNow: number,
    fallback?: AutoscalingPolicy,
  ): ScalingDecisionRecord | undefined {
    const metrics = this.window();
    const policy = this.policy ?? fallback ?? defaultAutoscalingPolicy;
    const decision: AutoscalingDecision = policy(
      {
        config: this.config,
        currentReplicas: current,
        runningReplicas: running,
        totalRequests: metrics.ongoing + metrics.queued,
        queuedNow,
        metrics,
        nowMs,
      },
      this.policyState,
    );
    this.policyState = decision.state ?? {};
    this.pendingUp = decision.reason === 'upscale-delay' ? Math.floor(decision.pending ?? current + 1) : undefined;
    const to = Math.max(0, Math.floor(decision.replicas));
    return to === current
      ? undefined
      : { atMs: nowMs, from: current, to, reason: decision.reason, message: decision.message };
  }

  get state(): AutoscalingState {
    return { ...this.policyState };
  }

  set state(s: AutoscalingState) {
    this.policyState = { ...s };
  }
}
