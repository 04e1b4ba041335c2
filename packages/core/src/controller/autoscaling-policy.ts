/**
 * Autoscaling policies (pure): (context, state) → decision. No I/O, no timers: time arrives as
 * `ctx.nowMs`, and everything a policy remembers between calls lives in the state it returns.
 *
 * - `defaultAutoscalingPolicy` follows Ray Serve: error ratio = total (ongoing + queued) over
 *   targetOngoingRequests × current replicas, smoothed by upscalingFactor / downscalingFactor,
 *   clamped to [min, max]; a change happens only after it has been wanted for upscaleDelayS /
 *   downscaleDelayS in a row; scaling from zero is immediate.
 * - `llmAutoscalingPolicy` adds the engine's own signals (waiting queue, KV-cache use), which say a
 *   replica is saturated long before its ongoing count does (an LLM replica admits many requests).
 * - `applyDelays` is the delay and bounds logic both share; custom policies can reuse it.
 */
import type { ResolvedAutoscaling } from '../contract/autoscaling.js';
import type {
  AutoscalingContext,
  AutoscalingDecision,
  AutoscalingPolicy,
  AutoscalingState,
} from '../contract/autoscaling.js';

export function clampReplicas(config: ResolvedAutoscaling, n: number): number {
  return Math.min(config.maxReplicas, Math.max(config.minReplicas, n));
}

/** Ray's replica count for a load, before bounds and delays. */
export function rayDesiredReplicas(config: ResolvedAutoscaling, current: number, total: number): number {
  if (current === 0) return total > 0 ? Math.max(1, Math.ceil(total / config.targetOngoingRequests)) : 0;
  const errorRatio = total / (config.targetOngoingRequests * current);
  const factor = errorRatio > 1 ? config.upscalingFactor : config.downscalingFactor;
  const smoothed = 1 + (errorRatio - 1) * factor;
  // The epsilon keeps float noise (e.g. 2.0000000001) from asking for one more replica.
  return Math.max(0, Math.ceil(current * smoothed - 1e-9));
}

/**
 * Turns a wanted count into a decision: bounds first (at once), scale from zero at once, otherwise
 * a change only after it has been wanted for the upscale / downscale delay.
 */
export function applyDelays(
  ctx: AutoscalingContext,
  state: AutoscalingState,
  wanted: number,
  why: string,
): AutoscalingDecision {
  const { config, currentReplicas: current, nowMs } = ctx;
  const desired = clampReplicas(config, wanted);
  const bounded = clampReplicas(config, current);
  if (bounded !== current) {
    return {
      replicas: bounded,
      state: {},
      reason: 'bounds',
      message: `outside [${config.minReplicas}, ${config.maxReplicas}]`,
    };
  }
  if (current === 0 && desired > 0) {
    return {
      replicas: desired,
      state: {},
      reason: 'scale-from-zero',
      message: `${ctx.queuedNow} requests waiting; ${why}`,
    };
  }
  if (desired > current) {
    const since = state.upSinceMs ?? nowMs;
    if (nowMs - since >= config.upscaleDelayS * 1000)
      return { replicas: desired, state: {}, reason: 'scale-up', message: why };
    return { replicas: current, pending: desired, state: { upSinceMs: since }, reason: 'upscale-delay', message: why };
  }
  if (desired < current) {
    const since = state.downSinceMs ?? nowMs;
    if (nowMs - since >= config.downscaleDelayS * 1000)
      return { replicas: desired, state: {}, reason: 'scale-down', message: why };
    return { replicas: current, state: { downSinceMs: since }, reason: 'downscale-delay', message: why };
  }
  return { replicas: current, state: {}, reason: 'at-target', message: why };
}

export const defaultAutoscalingPolicy: AutoscalingPolicy = (ctx, state) => {
  // A request waiting right now counts even before the averaged window notices it (scale from zero).
  const total = ctx.currentReplicas === 0 ? Math.max(ctx.totalRequests, ctx.queuedNow) : ctx.totalRequests;
  const wanted = rayDesiredReplicas(ctx.config, ctx.currentReplicas, total);
  return applyDelays(
    ctx,
    state,
    wanted,
    `${round(total)} ongoing+queued, target ${ctx.config.targetOngoingRequests} per replica`,
  );
};

/** Names of the custom metrics llmAutoscalingPolicy reads (an LLM replica's autoscalingMetrics()). */
export const LLM_METRICS = {
  /** Requests the engine has admitted but not scheduled yet (its waiting queue). */
  waiting: 'waitingRequests',
  /** Fraction of the replica's KV-cache blocks in use, 0..1. */
  kvCacheUsage: 'kvCacheUsage',
} as const;

export interface LlmPolicyOptions {
  /** Engine waiting requests per replica above which the deployment scales up. Default: 2. */
  maxWaitingPerReplica?: number;
  /** Mean KV-cache use (0..1) above which the deployment scales up by one. Default: 0.9. */
  kvHighWatermark?: number;
  /** Mean KV-cache use below which scaling down is allowed at all. Default: 0.5. */
  kvLowWatermark?: number;
}

/**
 * Ray's formula, raised by engine pressure: a waiting queue over maxWaitingPerReplica asks for enough
 * replicas to bring it back under, and KV use over the high watermark asks for one more; scaling down
 * needs an empty waiting queue and KV use under the low watermark, so that a replica holding long
 * generations in its cache is not taken away.
 */
export function llmAutoscalingPolicy(options: LlmPolicyOptions = {}): AutoscalingPolicy {
  const maxWaiting = options.maxWaitingPerReplica ?? 2;
  const kvHigh = options.kvHighWatermark ?? 0.9;
  const kvLow = options.kvLowWatermark ?? 0.5;
  return (ctx, state) => {
    const { metrics, currentReplicas: current } = ctx;
    const base = ctx.currentReplicas === 0 ? Math.max(ctx.totalRequests, ctx.queuedNow) : ctx.totalRequests;
    let wanted = rayDesiredReplicas(ctx.config, current, base);
    const waiting = metrics.custom[LLM_METRICS.waiting] ?? 0;
    const kv = metrics.reporting > 0 ? (metrics.custom[LLM_METRICS.kvCacheUsage] ?? 0) / metrics.reporting : 0;
    if (current > 0 && waiting > maxWaiting * current) wanted = Math.max(wanted, Math.ceil(waiting / maxWaiting));
    if (current > 0 && kv > kvHigh) wanted = Math.max(wanted, current + 1);
    if (wanted < current && (waiting > 0 || kv >= kvLow)) wanted = current;
    return applyDelays(
      ctx,
      state,
      wanted,
      `${round(base)} ongoing+queued, ${round(waiting)} waiting in engines, KV ${Math.round(kv * 100)}%`,
    );
  };
}

/** A policy given by name in a config file. */
export function namedPolicy(name: string): AutoscalingPolicy | undefined {
  if (name === 'default' || name === 'ray') return defaultAutoscalingPolicy;
  if (name === 'llm') return llmAutoscalingPolicy();
  return undefined;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
