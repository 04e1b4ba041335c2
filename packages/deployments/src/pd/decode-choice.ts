/**
 * Which decode replica takes a request (pure policy over plain data): the one with the most free KV
 * blocks by its latest report, less the blocks this router has already sent there and not yet seen in
 * a report. Reports come with every decode stream (its first and last items) and from kvReport(); a
 * report older than maxAgeMs is not trusted. undefined: let the core router choose (power of two
 * choices), which is how replicas without a report yet (new ones) get their first requests and report.
 */

export interface KvReport {
  /** The replica's id as its ReplicaContext names it (what pinnedReplicaKey takes). */
  replicaId: string;
  freeBlocks: number;
  totalBlocks: number;
  blockSize: number;
}

export interface DecodeChoiceOptions {
  /** Reports older than this are ignored. Default 5000. */
  maxAgeMs?: number;
  /** Every exploreEvery-th choice is left to the core router, so that replicas without a report get one. Default 8. */
  exploreEvery?: number;
}

interface Known {
  report: KvReport;
  atMs: number;
  /** Blocks of requests sent since the report, not yet in any report. */
  pending: number;
}

export class DecodeChoice {
  readonly #known = new Map<string, Known>();
  #choices = 0;
  readonly #maxAgeMs: number;
  readonly #exploreEvery: number;

  constructor(options: DecodeChoiceOptions = {}) {
    this.#maxAgeMs = options.maxAgeMs ?? 5000;
    this.#exploreEvery = options.exploreEvery ?? 8;
  }

  /** A replica's report; `includes` blocks of a request sent there that this report already counts. */
  report(report: KvReport, nowMs: number, includes = 0): void {
    const prev = this.#known.get(report.replicaId);
    const pending = Math.max(0, (prev?.pending ?? 0) - includes);
    this.#known.set(report.replicaId, { report, atMs: nowMs, pending });
  }

  /** Blocks counted by choose() for a request that never reached that replica's pool (finished early, went elsewhere). */
  release(replicaId: string, blocks: number): void {
    const k = this.#known.get(replicaId);
    if (k) k.pending = Math.max(0, k.pending - blocks);
  }

  /** A replica that failed a call: no longer chosen until it reports again. */
  forget(replicaId: string): void {
    this.#known.delete(replicaId);
  }

  /** The replica for a request that needs `blocks` KV blocks, or undefined for the core router's choice. */
  choose(blocks: number, nowMs: number): string | undefined {
    this.#choices++;
    if (this.#exploreEvery > 0 && this.#choices % this.#exploreEvery === 0) return undefined;
    let best: string | undefined;
    let bestFree = -Infinity;
    for (const [id, k] of this.#known) {
      if (nowMs - k.atMs > this.#maxAgeMs) {
        this.#known.delete(id);
        continue;
      }
      const free = k.report.freeBlocks - k.pending;
      if (free > bestFree || (free === bestFree && best !== undefined && id < best)) {
        best = id;
        bestFree = free;
      }
    }
    if (best === undefined || bestFree < blocks) return undefined;
    this.#known.get(best)!.pending += blocks;
    return best;
  }

  /** Tokens per KV block, from the latest report (undefined before any). */
  get blockSize(): number | undefined {
    let size: number | undefined;
    for (const k of this.#known.values()) size = k.report.blockSize;
    return size;
  }

  /** Free blocks as this router believes them (tests, logs). */
  believedFree(replicaId: string): number | undefined {
    const k = this.#known.get(replicaId);
    return k ? k.report.freeBlocks - k.pending : undefined;
  }
}
