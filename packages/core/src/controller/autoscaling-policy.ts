/**
 * Autoscaling policy (pure): context → (replicas, state). The default follows Ray Serve's: desired =
 * ceil(total ongoing + queued / targetOngoingRequests), clamped to [min, max]; a change only happens
 * after the demand has pointed the same way for upscaleDelayS / downscaleDelayS; scaling from zero is
 * immediate. The controller calls it every tick for 'auto' deployments (issue 7 adds the reporting loop,
 * LLM signals and pluggable policies).
 */
import type { ResolvedAutoscaling } from '../config.js';

export interface AutoscalingContext {
  config: ResolvedAutoscaling;
  currentReplicas: number;
  /** Ongoing requests in replicas plus requests queued in callers' routers. */
  totalRequests: number;
  nowMs: number;
}

export interface AutoscalingState {
  /** When the demand started pointing up (or down); undefined when it matches the current count. */
  upSinceMs?: number;
  downSinceMs?: number;
}

export interface AutoscalingDecision {
  replicas: number;
  state: AutoscalingState;
  reason: string;
}

export type AutoscalingPolicy = (ctx: AutoscalingContext, state: AutoscalingState) => AutoscalingDecision;

export const defaultAutoscalingPolicy: AutoscalingPolicy = (ctx, state) => {
  const { config, currentReplicas, totalRequests, nowMs } = ctx;
  const raw = Math.ceil(totalRequests / config.targetOngoingRequests);
  const desired = Math.min(config.maxReplicas, Math.max(config.minReplicas, raw));
  if (currentReplicas === 0 && totalRequests > 0) {
    return { replicas: Math.max(1, desired), state: {}, reason: 'scale from zero: requests waiting' };
  }
  if (desired > currentReplicas) {
    const since = state.upSinceMs ?? nowMs;
    if (nowMs - since >= config.upscaleDelayS * 1000) {
      return { replicas: desired, state: {}, reason: `${totalRequests} requests over target ${config.targetOngoingRequests}` };
    }
    return { replicas: currentReplicas, state: { upSinceMs: since }, reason: 'waiting for upscale delay' };
  }
  if (desired < currentReplicas) {
    const since = state.downSinceMs ?? nowMs;
    if (nowMs - since >= config.downscaleDelayS * 1000) {
      return { replicas: desired, state: {}, reason: `${totalRequests} requests under target ${config.targetOngoingRequests}` };
    }
    return { replicas: currentReplicas, state: { downSinceMs: since }, reason: 'waiting for downscale delay' };
  }
  return { replicas: currentReplicas, state: {}, reason: 'at target' };
};
