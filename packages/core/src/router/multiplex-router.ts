/**
 * Replica choice for a call that names a multiplexed model (pure policy), as Ray Serve's router does
 * for `multiplexed_model_id`: loading a model costs far more than waiting behind a request or two, so
 *
 * 1. among the replicas with a free slot, those that hold the model win: power of two choices among
 *    them, unless the chosen one is busier than the least loaded free replica by more than
 *    `maxImbalance` (then a hot model is loaded on a second replica instead of queueing on one);
 * 2. on a miss (no free holder, or too busy), the replicas holding the fewest models are preferred (a
 *    load there evicts nothing, or the least), power of two choices among them, unless that costs more
 *    than `maxImbalance` requests over the least loaded free replica: then power of two choices among
 *    the free replicas with room for one more model, else among every free replica.
 *
 * null: every replica is at maxOngoingRequests (the call waits in the caller's queue).
 */
import { chooseReplica, type ReplicaLoad } from './pow2-router.js';
import type { ModelHolder } from './model-view.js';

export interface MultiplexLoad extends ReplicaLoad {
  /** What this caller believes the replica holds (model-view.ts); absent: nothing known. */
  models?: ModelHolder;
}

export interface MultiplexOptions {
  /** In-flight requests a holder may have above the least loaded free replica before a second copy is loaded. Default 4. */
  maxImbalance?: number;
}

export function chooseMultiplexed(
  replicas: readonly MultiplexLoad[],
  modelId: string,
  nowMs: number,
  opts: MultiplexOptions = {},
  random: () => number = Math.random,
): string | null {
  const free = replicas.filter((r) => r.inFlight < r.maxOngoing && (r.blockedUntilMs ?? 0) <= nowMs);
  if (free.length === 0) return null;
  const holders = free.filter((r) => r.models?.has(modelId) === true);
  const minLoad = Math.min(...free.map((r) => r.inFlight));
  if (holders.length > 0) {
    const id = chooseReplica(holders, nowMs, random)!;
    if (holders.find((r) => r.id === id)!.inFlight - minLoad <= (opts.maxImbalance ?? 4)) return id;
  }
  const fewest = Math.min(...free.map((r) => r.models?.size ?? 0));
  const emptiest = free.filter((r) => (r.models?.size ?? 0) === fewest);
  const id = chooseReplica(emptiest, nowMs, random)!;
  if (emptiest.find((r) => r.id === id)!.inFlight - minLoad <= (opts.maxImbalance ?? 4)) return id;
  const roomy = free.filter((r) => hasRoom(r.models));
  return chooseReplica(roomy.length > 0 ? roomy : free, nowMs, random);
}

/** Room for one more model without evicting: nothing known counts as room. */
export function hasRoom(models: ModelHolder | undefined): boolean {
  return models === undefined || models.capacity === undefined || models.size < models.capacity;
}
