/**
 * Resource-aware placement over a node (pure bookkeeping: no I/O). GPUs are tracked one by one so that
 * fractional requests pack onto a shared GPU (best fit: the fullest GPU that still has room) and whole
 * requests take free GPUs. Running out returns null; a request no node could ever meet is reported by
 * `unsatisfiable` so the deployment can fail with the reason instead of waiting forever.
 */
export interface NodeResources {
  cpus: number;
  memoryMb: number;
  /** Number of GPUs (ids 0..gpus-1). */
  gpus: number;
}

export interface ResourceRequest {
  cpus: number;
  gpus: number;
  memoryMb: number;
}

export interface Allocation {
  /** Cluster node that holds it (cluster/cluster-placement.ts); absent on this process's node. */
  nodeId?: string;
  cpus: number;
  memoryMb: number;
  /** Per GPU id, the share taken (1 for a whole GPU). */
  gpuShares: { id: number; share: number }[];
}

const EPS = 1e-9;

/** What deployments place replicas through: one node's PlacementBook, or a cluster's nodes. */
export interface Placement {
  /** Why the request can never be met, or null when it could be (now or once resources free up). */
  unsatisfiable(req: ResourceRequest): string | null;
  allocate(req: ResourceRequest): Allocation | null;
  free(alloc: Allocation): void;
  /** Why allocate() returned null, for the deployment's status message. */
  explain?(req: ResourceRequest): string;
  /** Allocates on one named node (a re-adopted replica's), or null when it is not there or full. */
  allocateOn?(nodeId: string, req: ResourceRequest): Allocation | null;
}

export class PlacementBook implements Placement {
  private freeCpus: number;
  private freeMemoryMb: number;
  /** Free share of each GPU, 0..1. */
  private readonly freeGpu: number[];

  constructor(readonly node: NodeResources) {
    this.freeCpus = node.cpus;
    this.freeMemoryMb = node.memoryMb;
    this.freeGpu = Array.from({ length: node.gpus }, () => 1);
  }

  /** Why the request can never fit on this node, or null when it could (once resources free up). */
  unsatisfiable(req: ResourceRequest): string | null {
    if (req.cpus > this.node.cpus + EPS) return `needs ${req.cpus} CPUs, the node has ${this.node.cpus}`;
    if (req.memoryMb > this.node.memoryMb + EPS) return `needs ${req.memoryMb} MiB, the node has ${this.node.memoryMb}`;
    if (req.gpus > this.node.gpus + EPS) return `needs ${req.gpus} GPUs, the node has ${this.node.gpus}`;
    return null;
  }

  canAllocate(req: ResourceRequest): boolean {
    return this.plan(req) !== null;
  }

  allocate(req: ResourceRequest): Allocation | null {
    const gpuShares = this.plan(req);
    if (gpuShares === null) return null;
    this.freeCpus -= req.cpus;
    this.freeMemoryMb -= req.memoryMb;
    for (const { id, share } of gpuShares) this.freeGpu[id]! -= share;
    return { cpus: req.cpus, memoryMb: req.memoryMb, gpuShares };
  }

  free(alloc: Allocation): void {
    this.freeCpus += alloc.cpus;
    this.freeMemoryMb += alloc.memoryMb;
    for (const { id, share } of alloc.gpuShares) this.freeGpu[id] = Math.min(1, this.freeGpu[id]! + share);
  }

  get available(): NodeResources & { gpuFree: number[] } {
    return {
      cpus: this.freeCpus,
      memoryMb: this.freeMemoryMb,
      gpus: this.freeGpu.filter((g) => g > 1 - EPS).length,
      gpuFree: [...this.freeGpu],
    };
  }

  private plan(req: ResourceRequest): Allocation['gpuShares'] | null {
    if (req.cpus > this.freeCpus + EPS || req.memoryMb > this.freeMemoryMb + EPS) return null;
    if (req.gpus <= 0) return [];
    if (req.gpus < 1) {
      let best = -1;
      this.freeGpu.forEach((free, id) => {
        if (free + EPS >= req.gpus && (best < 0 || free < this.freeGpu[best]!)) best = id;
      });
      return best < 0 ? null : [{ id: best, share: req.gpus }];
    }
    const whole = this.freeGpu
      .map((free, id) => ({ free, id }))
      .filter((g) => g.free > 1 - EPS)
      .slice(0, req.gpus);
    return whole.length < req.gpus ? null : whole.map((g) => ({ id: g.id, share: 1 }));
  }
}

/** The local node: CPUs and memory from the OS; GPUs from FLOTILLA_GPUS, else CUDA_VISIBLE_DEVICES, else 0. */
export function detectLocalResources(env: NodeJS.ProcessEnv, cpus: number, totalMemoryMb: number): NodeResources {
  let gpus = 0;
  if (env.FLOTILLA_GPUS !== undefined) gpus = Number.parseInt(env.FLOTILLA_GPUS, 10) || 0;
  else if (env.CUDA_VISIBLE_DEVICES)
    gpus = env.CUDA_VISIBLE_DEVICES.split(',').filter((s) => s.trim() !== '' && s !== '-1').length;
  return { cpus, memoryMb: totalMemoryMb, gpus };
}

/** CUDA_VISIBLE_DEVICES for a process replica's allocation (ids of the parent's visible devices). */
export function cudaVisibleDevices(alloc: Allocation, parentVisible: string | undefined): string {
  const visible = parentVisible
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return alloc.gpuShares.map(({ id }) => visible?.[id] ?? String(id)).join(',');
}
