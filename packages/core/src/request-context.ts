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
  /** The call's CallOptions.multiplexedModelId (or the proxy's serve_multiplexed_model_id header); undefined: none. */
  multiplexedModelId?: string;
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

/**
 * The multiplexed model id of the request the calling code runs for (Ray Serve's
 * serve.get_multiplexed_model_id()); undefined outside a request or when the call named none.
 */
export function getMultiplexedModelId(): string | undefined {
  return requestContextStorage.getStore()?.multiplexedModelId;
}

/** What runs when a request's replica releases it (unpinning its multiplexed models), by request context. */
const endHooks = new WeakMap<RequestContext, (() => void)[]>();

/**
 * Runs `fn` once the current request has finished (its result sent, its stream ended or cancelled).
 * false when no request is current (then nothing is registered and the caller cleans up itself).
 */
export function onRequestEnd(fn: () => void): boolean {
  const ctx = requestContextStorage.getStore();
  if (!ctx) return false;
  const hooks = endHooks.get(ctx);
  if (hooks) hooks.push(fn);
  else endHooks.set(ctx, [fn]);
  return true;
}

/** The replica runtime: `ctx`'s request finished; runs its onRequestEnd hooks once. */
export function endRequest(ctx: RequestContext): void {
  const hooks = endHooks.get(ctx);
  if (!hooks) return;
  endHooks.delete(ctx);
  for (const fn of hooks) {
    try {
      fn();
    } catch (err) {
      process.stderr.write(`[flotilla] a request-end hook threw: ${(err as Error)?.message ?? err}\n`);
    }
  }
}

/** The replica this code runs in; undefined outside replicas. */
export function getReplicaContext(): ReplicaContext | undefined {
  return replicaContext;
}

export function setReplicaContext(ctx: ReplicaContext): void {
  replicaContext = ctx;
}
