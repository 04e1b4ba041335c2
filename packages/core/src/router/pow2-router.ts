/**
 * Power of two choices (pure policy): sample two replicas with free slots, send to the one with fewer
 * requests in flight from this caller. Ties and single candidates are handled; null means every replica
 * is at maxOngoingRequests and the request must wait in the caller's queue.
 */
export interface ReplicaLoad {
  id: string;
  /** Requests this caller has sent to the replica and not yet seen finish. */
  inFlight: number;
  maxOngoing: number;
  /** Set after the replica rejected a request (full from other callers' load) until this time. */
  blockedUntilMs?: number;
}

export function chooseReplica(
  replicas: readonly ReplicaLoad[],
  nowMs: number,
  random: () => number = Math.random,
): string | null {
  if (replicas.length === 1) {
    const only = replicas[0]!;
    return only.inFlight < only.maxOngoing && (only.blockedUntilMs ?? 0) <= nowMs ? only.id : null;
  }
  const free: ReplicaLoad[] = [];
  for (const r of replicas) if (r.inFlight < r.maxOngoing && (r.blockedUntilMs ?? 0) <= nowMs) free.push(r);
  if (free.length === 0) return null;
  if (free.length === 1) return free[0]!.id;
  const i = Math.floor(random() * free.length);
  let j = Math.floor(random() * (free.length - 1));
  if (j >= i) j++;
  const a = free[i]!;
  const b = free[j]!;
  return a.inFlight <= b.inFlight ? a.id : b.id;
}

/** Retry-After for a BackPressureError: roughly how long until the queue ahead has drained. */
export function retryAfterS(queued: number, capacity: number): number {
  return Math.max(1, Math.ceil(queued / Math.max(1, capacity)));
}
