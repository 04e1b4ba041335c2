/**
 * Prefix-aware replica choice (pure policy): requests with the same routing key go to the same replica.
 * The key is opaque here: the deployment class derives it (static routingKey, routing-key.ts), e.g.
 * LLMServer from the first characters of the prompt, so that requests sharing a prompt prefix meet on
 * the replica whose KV cache likely still holds it (prefix caching turns the shared prompt into a cache
 * hit). The replica for a key is found by rendezvous hashing
 * (highest hash of key + replica id), so adding or removing a replica moves only the keys it gains or
 * loses. When that replica is full, blocked, or busier than the least loaded free replica by more
 * than `maxImbalance` requests, the choice falls back to power of two choices. The same policy gives
 * sticky sessions: pass a session id as the key. A key made by pinnedReplicaKey(id) asks for one
 * replica by its id (a replica learns its own from getReplicaContext().replicaId): that replica while
 * it is free, else power of two choices (the caller's placement decision, e.g. the decode replica with
 * the most free KV in packages/deployments/src/pd/).
 */
import { chooseReplica, type ReplicaLoad } from './pow2-router.js';

export interface PrefixAwareOptions {
  /** In-flight requests the preferred replica may have above the least loaded free one before load wins. Default 4. */
  maxImbalance?: number;
}

/** Starts every pinned key; NUL characters keep it apart from keys derived from prompts. */
const PIN = '\u0000replica\u0000';

/** The routing key that sends a call to replica `replicaId` while it is free (see choosePrefixAware). */
export function pinnedReplicaKey(replicaId: string): string {
  return PIN + replicaId;
}

/** FNV-1a over a string (32 bits, UTF-16 units): fast, and good enough to spread keys. */
export function fnv1a(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The replica a key prefers among all known replicas (rendezvous hashing), or null when there are none. */
export function preferredReplica(replicas: readonly Pick<ReplicaLoad, 'id'>[], key: string): string | null {
  let best: string | null = null;
  let bestScore = -1;
  const h = fnv1a(key);
  for (const r of replicas) {
    const score = fnv1a(r.id, h);
    if (score > bestScore || (score === bestScore && best !== null && r.id < best)) {
      best = r.id;
      bestScore = score;
    }
  }
  return best;
}

/**
 * The replica for a request with routing `key`: its preferred replica while that one is free and not
 * too busy, else power of two choices (also when there is no key). null: every replica is full.
 */
export function choosePrefixAware(
  replicas: readonly ReplicaLoad[],
  key: string | undefined,
  nowMs: number,
  opts: PrefixAwareOptions = {},
  random: () => number = Math.random,
): string | null {
  if (key === undefined) return chooseReplica(replicas, nowMs, random);
  if (key.startsWith(PIN)) {
    const pinned = replicas.find((r) => r.id === key.slice(PIN.length));
    const free = pinned !== undefined && pinned.inFlight < pinned.maxOngoing && (pinned.blockedUntilMs ?? 0) <= nowMs;
    return free ? pinned.id : chooseReplica(replicas, nowMs, random);
  }
  const id = preferredReplica(replicas, key);
  const pref = replicas.find((r) => r.id === id);
  let minLoad = Infinity;
  for (const r of replicas)
    if (r.inFlight < r.maxOngoing && (r.blockedUntilMs ?? 0) <= nowMs) minLoad = Math.min(minLoad, r.inFlight);
  if (minLoad === Infinity) return null;
  const free = pref !== undefined && pref.inFlight < pref.maxOngoing && (pref.blockedUntilMs ?? 0) <= nowMs;
  if (free && pref!.inFlight - minLoad <= (opts.maxImbalance ?? 4)) return pref!.id;
  return chooseReplica(replicas, nowMs, random);
}
