/**
 * Autoscaling's vocabulary: the options a deployment gives, their resolved form, and the shape of a
 * policy — (context, state) → decision. Types only; the policies themselves live in
 * controller/autoscaling-policy.ts.
 */

export interface AutoscalingOptions {
  /** Fewest replicas the autoscaler keeps. Default: 1. */
  minReplicas?: number;
  /** Most replicas the autoscaler starts. Default: 1, or 100 with numReplicas 'auto'. */
  maxReplicas?: number;
  /** Replicas started before any metric arrives. Default: minReplicas. */
  initialReplicas?: number;
  /** Ongoing + queued requests per replica the autoscaler aims at. Default: 2. */
  targetOngoingRequests?: number;
  /** How long the demand must call for more replicas before scaling up, in seconds. Default: 30. */
  upscaleDelayS?: number;
  /** How long the demand must call for fewer replicas before scaling down, in seconds. Default: 600. */
  downscaleDelayS?: number;
  /** How often replicas and handles report their load, in seconds. Default: 1. */
  metricsIntervalS?: number;
  /**
   * Seconds of load samples averaged into each decision; shorter reacts faster to a burst, longer
   * ignores blips. Ray's is 30, which with its delays reacts in about 40 s. Default: 5.
   */
  lookBackPeriodS?: number;
  /** Multiplies how far each upscale moves toward the wanted count (Ray's upscaling_factor). Default: 1. */
  upscalingFactor?: number;
  /** Multiplies how far each downscale moves toward the wanted count (Ray's downscaling_factor). Default: 1. */
  downscalingFactor?: number;
  /**
   * The policy: a function (see autoscaling-policy.ts), or 'default' (Ray's formula) or 'llm' (also
   * engine waiting queue and KV-cache use, from the replicas' autoscalingMetrics()) by name.
   * Default: startServe's autoscalingPolicy, else 'default'.
   */
  policy?: AutoscalingPolicy | 'default' | 'llm';
}

export interface ResolvedAutoscaling extends Required<Omit<AutoscalingOptions, 'policy'>> {
  /** Undefined: the instance's policy (startServe's autoscalingPolicy, else the default). */
  policy?: AutoscalingPolicy;
}

/** Load seen over the look-back window (averages of the samples taken every metricsIntervalS). */
export interface AutoscalingMetrics {
  /** Requests running in the deployment's replicas (sum over replicas). */
  ongoing: number;
  /** Requests waiting for a replica in the callers' routers (sum over callers). */
  queued: number;
  /**
   * Custom metrics from the replicas' `autoscalingMetrics()`, each summed over the replicas that
   * reported it (divide by `reporting` for a mean, e.g. of kvCacheUsage).
   */
  custom: Record<string, number>;
  /** Replicas whose reports are included. */
  reporting: number;
}

export interface AutoscalingContext {
  config: ResolvedAutoscaling;
  /** The current target (what the controller is converging to), not the running count. */
  currentReplicas: number;
  /** Replicas RUNNING now. */
  runningReplicas: number;
  /** metrics.ongoing + metrics.queued: Ray's "total ongoing requests". */
  totalRequests: number;
  /** Requests queued in callers right now (not averaged): the scale-from-zero trigger. */
  queuedNow: number;
  metrics: AutoscalingMetrics;
  nowMs: number;
}

export interface AutoscalingState {
  /** When the demand started pointing up (or down); undefined when it matches the current count. */
  upSinceMs?: number;
  downSinceMs?: number;
}

/** Stable, low-cardinality codes (a Prometheus label); `message` carries the numbers. */
export type AutoscalingReason =
  | 'scale-up'
  | 'scale-down'
  | 'scale-from-zero'
  | 'bounds'
  | 'at-target'
  | 'upscale-delay'
  | 'downscale-delay'
  | 'config'
  | 'restored';

export interface AutoscalingDecision {
  replicas: number;
  /**
   * While an upscale waits out upscaleDelayS: the count it would move to now. Only a hint (the
   * controller warms worker threads for the replicas it would add); `replicas` is the decision.
   */
  pending?: number;
  state: AutoscalingState;
  reason: AutoscalingReason;
  message: string;
}

export type AutoscalingPolicy = (ctx: AutoscalingContext, state: AutoscalingState) => AutoscalingDecision;
