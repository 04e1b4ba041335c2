/**
 * Placement over the nodes of a cluster (pure bookkeeping): the head's own node plus every agent that
 * joined, each with its own PlacementBook (CPUs, memory, GPUs one by one, fractional shares). A request
 * goes to one node that can take it whole:
 *   - 'pack' (default): the node already holding the most replicas, so nodes fill up one at a time
 *     (ties: the head first, then agents in join order);
 *   - 'spread': the node holding the fewest, for failure isolation.
 * Either way a request without GPUs avoids GPU nodes while another node can take it, so CPU replicas
 * do not sit on the resources a GPU replica will need.
 *
 * Nodes come and go, so a request no node meets is not fatal here (unsatisfiable() is null): the
 * deployment waits with explain()'s reason in its status until a node that fits joins.
 */
import {
  PlacementBook,
  type Allocation,
  type NodeResources,
  type Placement,
  type ResourceRequest,
} from '../controller/placement.js';

export type PlacementStrategy = 'pack' | 'spread';

/** The head's own node id in allocations (absent nodeId) and in status. */
export const LOCAL_NODE = 'local';

interface NodeEntry {
  book: PlacementBook;
  replicas: number;
}

export class ClusterPlacement implements Placement {
  private readonly nodes = new Map<string, NodeEntry>();

  /** `local`: the head's resources (it hosts replicas too, as threads or processes). */
  constructor(
    local: NodeResources,
    private readonly strategy: PlacementStrategy = 'pack',
  ) {
    this.nodes.set(LOCAL_NODE, { book: new PlacementBook(local), replicas: 0 });
  }

  addNode(nodeId: string, resources: NodeResources): void {
    if (nodeId === LOCAL_NODE) throw new Error(`node id '${LOCAL_NODE}' is the head's`);
    this.nodes.set(nodeId, { book: new PlacementBook(resources), replicas: 0 });
  }

  /** Forgets a node; later free() calls for its allocations are ignored (its replicas are gone). */
  removeNode(nodeId: string): void {
    if (nodeId !== LOCAL_NODE) this.nodes.delete(nodeId);
  }

  has(nodeId: string): boolean {
    return this.nodes.has(nodeId);
  }

  /** Free resources and replica count of a node, for status. */
  usage(nodeId: string): (NodeResources & { replicas: number }) | undefined {
    const entry = this.nodes.get(nodeId);
    if (!entry) return undefined;
    const { cpus, memoryMb, gpuFree } = entry.book.available;
    return { cpus, memoryMb, gpus: gpuFree.reduce((a, b) => a + b, 0), replicas: entry.replicas };
  }

  unsatisfiable(): string | null {
    return null;
  }

  allocate(req: ResourceRequest): Allocation | null {
    const nodeId = this.choose(req);
    if (nodeId === undefined) return null;
    const entry = this.nodes.get(nodeId)!;
    const alloc = entry.book.allocate(req)!;
    entry.replicas++;
    return nodeId === LOCAL_NODE ? alloc : { ...alloc, nodeId };
  }

  allocateOn(nodeId: string, req: ResourceRequest): Allocation | null {
    const entry = this.nodes.get(nodeId);
    const alloc = entry?.book.allocate(req);
    if (!entry || !alloc) return null;
    entry.replicas++;
    return nodeId === LOCAL_NODE ? alloc : { ...alloc, nodeId };
  }

  free(alloc: Allocation): void {
    const entry = this.nodes.get(alloc.nodeId ?? LOCAL_NODE);
    if (!entry) return;
    entry.book.free(alloc);
    entry.replicas = Math.max(0, entry.replicas - 1);
  }

  /** Per node, why it cannot take the request: "no node can take it now — local: needs 1 GPUs, …". */
  explain(req: ResourceRequest): string {
    const why = [...this.nodes].map(([id, { book }]) => {
      const never = book.unsatisfiable(req);
      if (never) return `${id}: ${never}`;
      const a = book.available;
      return `${id}: busy (free ${round(a.cpus)} CPUs, ${round(a.memoryMb)} MiB, GPU shares [${a.gpuFree.map(round).join(', ')}])`;
    });
    return (
      `no node can take a replica needing ${describe(req)} now; waiting for resources or a node that fits ` +
      `(${why.join('; ')})`
    );
  }

  private choose(req: ResourceRequest): string | undefined {
    let best: { id: string; score: number } | undefined;
    for (const [id, entry] of this.nodes) {
      if (!entry.book.canAllocate(req)) continue;
      const score = this.score(req, entry);
      // Strictly better only: ties keep the earlier node (the head, then agents in join order).
      if (!best || score > best.score) best = { id, score };
    }
    return best?.id;
  }

  /** Higher is better. A GPU node taking a CPU-only request costs more than any replica count. */
  private score(req: ResourceRequest, entry: NodeEntry): number {
    const load = this.strategy === 'pack' ? entry.replicas : -entry.replicas;
    const gpuPenalty = req.gpus <= 0 && entry.book.node.gpus > 0 ? 1e6 : 0;
    return load - gpuPenalty;
  }
}

function describe(req: ResourceRequest): string {
  return `${req.cpus} CPUs, ${req.gpus} GPUs, ${req.memoryMb} MiB`;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
