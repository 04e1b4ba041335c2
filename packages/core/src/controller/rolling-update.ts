/**
 * Which replicas to start and stop (pure): scaling to the target, and rolling from old versions to the
 * current one. A rollout surges: new replicas start first, at most max(20% of the target, 1) at a
 * time, and an old replica is stopped (drained) only once a new one is RUNNING in its place, so the
 * deployment never serves with fewer replicas than before and no request is dropped.
 */
import type { ReplicaState } from '../contract/status.js';

export interface PlannedReplica {
  id: string;
  /** The deployment version the replica runs (see deploymentVersion). */
  version: string;
  state: Extract<ReplicaState, 'STARTING' | 'RUNNING' | 'UNHEALTHY'>;
  ongoing: number;
}

export interface ReplicaPlan {
  /** New replicas of the current version to start. */
  start: number;
  /** Replicas to drain and stop, in order. */
  stop: string[];
}

/** Replicas replaced at once during a rollout: max(20% of the target, 1). */
export function maxReplacing(target: number): number {
  return Math.max(1, Math.floor(target * 0.2));
}

export function planReplicas(live: readonly PlannedReplica[], target: number, version: string): ReplicaPlan {
  const current = live.filter((r) => r.version === version);
  const old = live.filter((r) => r.version !== version);
  const stop = byStopOrder(current)
    .slice(0, Math.max(0, current.length - target))
    .map((r) => r.id);
  const kept = current.length - stop.length;
  if (old.length === 0) return { start: Math.max(0, target - kept), stop };
  const ready = current.filter((r) => r.state === 'RUNNING' && !stop.includes(r.id)).length;
  const pending = kept - ready;
  const start = Math.max(0, Math.min(target - kept, maxReplacing(target) - pending));
  // An old replica stays while it is still needed to serve the target: until a new one is ready.
  const oldToStop = old.length - Math.max(0, target - ready);
  stop.push(
    ...byStopOrder(old)
      .slice(0, Math.max(0, oldToStop))
      .map((r) => r.id),
  );
  return { start, stop };
}

/** Starting ones first (they serve nothing yet), then unhealthy ones, then the least busy. */
function byStopOrder(rs: readonly PlannedReplica[]): PlannedReplica[] {
  const rank = (r: PlannedReplica) => (r.state === 'STARTING' ? -2 : r.state === 'UNHEALTHY' ? -1 : r.ongoing);
  return [...rs].sort((a, b) => rank(a) - rank(b));
}
