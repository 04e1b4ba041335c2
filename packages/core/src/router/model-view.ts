/**
 * What one caller believes a replica holds of a multiplexed deployment's models (pure, plain data).
 *
 * Replicas report their loaded ids with their stats, about once a second, through the controller; a
 * router that waited for the next report after sending a new id to a replica would send the id's next
 * requests elsewhere meanwhile and load it twice. So the view also learns from the caller's own
 * routing: an id sent to the replica counts as held at once (the replica loads it on arrival) and
 * moves to the front of a simulated LRU of the reported capacity, which drops the least recent id as
 * the replica will. A report replaces the view, except for ids this caller sent within `graceMs`
 * that the report does not show yet (it may have been taken before they arrived).
 */

export interface ModelHolder {
  has(id: string): boolean;
  /** Ids held. */
  readonly size: number;
  /** The replica's maxModelsPerReplica, once reported; undefined: unknown (taken as room to spare). */
  readonly capacity: number | undefined;
}

/** How long an id this caller routed stays in the view without a report showing it. */
export const ROUTED_GRACE_MS = 2500;
/**
 * Ids kept for a replica that has reported no capacity (no loader in use yet, or none at all): callers
 * may name any id, and a view without a bound would grow with every one.
 */
export const UNREPORTED_LIMIT = 64;

export class ModelView implements ModelHolder {
  /** Most recently used first. */
  private order: string[] = [];
  private cap: number | undefined;
  /** Ids this caller routed to the replica, and when. */
  private readonly routedAt = new Map<string, number>();

  constructor(private readonly graceMs = ROUTED_GRACE_MS) {}

  get size(): number {
    return this.order.length;
  }

  get capacity(): number | undefined {
    return this.cap;
  }

  has(id: string): boolean {
    return this.order.includes(id);
  }

  /** Ids, most recently used first. */
  ids(): readonly string[] {
    return this.order;
  }

  /** The replica's report: its loaded ids, most recently used first, and its capacity. */
  report(ids: readonly string[], capacity: number, nowMs: number): void {
    this.cap = capacity;
    const recent = [...this.routedAt]
      .filter(([id, at]) => nowMs - at <= this.graceMs && !ids.includes(id))
      .sort((a, b) => b[1] - a[1])
      .map(([id]) => id);
    for (const [id, at] of this.routedAt) if (nowMs - at > this.graceMs) this.routedAt.delete(id);
    this.order = [...recent, ...ids];
    this.trim();
  }

  /** This caller sent a request for `id` to the replica. */
  routed(id: string, nowMs: number): void {
    this.routedAt.set(id, nowMs);
    if (this.routedAt.size > 2 * UNREPORTED_LIMIT)
      for (const [old, at] of this.routedAt) if (nowMs - at > this.graceMs) this.routedAt.delete(old);
    const i = this.order.indexOf(id);
    if (i >= 0) this.order.splice(i, 1);
    this.order.unshift(id);
    this.trim();
  }

  private trim(): void {
    const limit = this.cap ?? UNREPORTED_LIMIT;
    if (this.order.length > limit) this.order.length = limit;
  }
}
