/**
 * Node liveness from heartbeats (pure: the caller passes the clock). A node is ALIVE while its last
 * heartbeat is recent, SUSPECT once it missed one interval (shown in status, still used), and DEAD once
 * it missed `missedLimit` in a row: the head then drops it and its replicas are replaced elsewhere.
 * A lost connection does not wait for the limit (head.ts reports it at once); heartbeats catch the
 * silent failures a TCP connection does not show (a frozen agent, a partition).
 */
export type NodeLivenessState = 'ALIVE' | 'SUSPECT' | 'DEAD';

export interface LivenessPolicy {
  /** Agents heartbeat this often, in ms. Default: 1000. */
  intervalMs: number;
  /** Heartbeats a node may miss in a row before it is dead. Default: 3. */
  missedLimit: number;
}

export const DEFAULT_LIVENESS: LivenessPolicy = { intervalMs: 1000, missedLimit: 3 };

/**
 * Heartbeats missed since the last one. A beat counts as missed half an interval after it was due, so
 * that ordinary jitter (a beat a few ms late) never shows as SUSPECT.
 */
export function missedHeartbeats(lastSeenMs: number, nowMs: number, policy: LivenessPolicy): number {
  return Math.max(0, Math.floor((nowMs - lastSeenMs - policy.intervalMs / 2) / policy.intervalMs));
}

export function livenessOf(lastSeenMs: number, nowMs: number, policy: LivenessPolicy): NodeLivenessState {
  const missed = missedHeartbeats(lastSeenMs, nowMs, policy);
  if (missed >= policy.missedLimit) return 'DEAD';
  return missed >= 1 ? 'SUSPECT' : 'ALIVE';
}

/** Last heartbeat per node; sweep() returns the nodes that just died (each once). */
export class NodeLivenessTable {
  private readonly lastSeen = new Map<string, number>();

  constructor(private readonly policy: LivenessPolicy = DEFAULT_LIVENESS) {}

  /** Registration counts as a heartbeat. */
  register(nodeId: string, nowMs: number): void {
    this.lastSeen.set(nodeId, nowMs);
  }

  /** False for a node the table does not know (never registered, or already dead). */
  beat(nodeId: string, nowMs: number): boolean {
    if (!this.lastSeen.has(nodeId)) return false;
    this.lastSeen.set(nodeId, Math.max(nowMs, this.lastSeen.get(nodeId)!));
    return true;
  }

  remove(nodeId: string): void {
    this.lastSeen.delete(nodeId);
  }

  state(nodeId: string, nowMs: number): NodeLivenessState | undefined {
    const seen = this.lastSeen.get(nodeId);
    return seen === undefined ? undefined : livenessOf(seen, nowMs, this.policy);
  }

  /** Milliseconds since the node's last heartbeat. */
  silenceMs(nodeId: string, nowMs: number): number | undefined {
    const seen = this.lastSeen.get(nodeId);
    return seen === undefined ? undefined : nowMs - seen;
  }

  /** Removes and returns the nodes that are now DEAD, with how many heartbeats each missed. */
  sweep(nowMs: number): { nodeId: string; missed: number }[] {
    const dead: { nodeId: string; missed: number }[] = [];
    for (const [nodeId, seen] of this.lastSeen) {
      if (livenessOf(seen, nowMs, this.policy) !== 'DEAD') continue;
      dead.push({ nodeId, missed: missedHeartbeats(seen, nowMs, this.policy) });
      this.lastSeen.delete(nodeId);
    }
    return dead;
  }
}
