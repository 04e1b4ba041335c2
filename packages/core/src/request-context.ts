/**
 * Where user code learns which request and replica it runs for. Handles made inside a replica read the
 * request context, so a nested call carries the same requestId and is cancelled with its parent.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { CostOptions } from './contract/deployment-options.js';

export interface RequestContext {
  requestId: string;
  /** Aborted when the caller cancels (client disconnect, break out of a stream, timeout). */
  signal: AbortSignal;
  app: string;
  deployment: string;
  method: string;
}

export interface ReplicaContext {
  replicaId: string;
  app: string;
  deployment: string;
  /** GPUs given by placement; for process replicas also in CUDA_VISIBLE_DEVICES. */
  gpuIds: number[];
  /**
   * The deployment's cost prices (DeploymentOptions.cost) as the replica started, so that it can price
   * what it serves (LLMServer's x-flotilla-cost-usd); undefined without prices.
   */
  cost?: CostOptions;
}

export const requestContextStorage = new AsyncLocalStorage<RequestContext>();

let replicaContext: ReplicaContext | undefined;

/** The request the calling code runs for, inside a replica; undefined elsewhere. */
export function getRequestContext(): RequestContext | undefined {
  return requestContextStorage.getStore();
}

/** The replica this code runs in; undefined outside replicas. */
export function getReplicaContext(): ReplicaContext | undefined {
  return replicaContext;
}

export function setReplicaContext(ctx: ReplicaContext): void {
  replicaContext = ctx;
}
