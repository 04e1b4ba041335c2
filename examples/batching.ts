/**
 * @batch: concurrent calls arrive as one array (one model forward for many requests, later).
 * A builder export: key=value arguments from the command line reach it.
 *
 *   serve run examples/batching.ts:app replicas=2
 *   for i in $(seq 20); do curl -s localhost:8000/square -d "$i" & done; wait
 *   curl -s localhost:8000/metrics | grep flotilla_batch_size
 */
import { batch, deployment } from '@flotilla/core';

@deployment({ placement: 'thread', maxOngoingRequests: 64 })
export class Squarer {
  @batch({ maxBatchSize: 16, batchWaitTimeoutMs: 20 })
  async square(xs: number[]): Promise<{ x: number; square: number; batchSize: number }[]> {
    return xs.map((x) => ({ x, square: x * x, batchSize: xs.length }));
  }
}

export const app = (args: { replicas?: string }) => Squarer.bind().options({ numReplicas: Number(args.replicas ?? 1) });
