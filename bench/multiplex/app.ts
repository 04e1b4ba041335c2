/**
 * The deployment bench/multiplex/run.ts measures: 3 thread replicas with room for `capacity` models
 * each. A "model" costs a load of `loadMs` (a timer, standing for reading weights) plus a 1 MiB
 * Float32Array filled at load; a request reads it. The model id always arrives as the argument, so the
 * replica's cache sees the same ids whichever way the router picked the replica.
 */
import { deployment, multiplexed } from '../../packages/core/src/index.js';

export interface BenchModelOptions {
  capacity: number;
  loadMs: number;
}

/** Models per replica (issue 22: room for 4 each). */
export const BENCH_CAPACITY = 4;

@deployment({ numReplicas: 3, maxOngoingRequests: 8, placement: 'thread' })
export class MuxBench {
  constructor(private readonly options: BenchModelOptions) {
    // The decorator's capacity is fixed at class definition; the bench passes the same number to check it.
    if (options.capacity !== BENCH_CAPACITY) throw new Error(`bench app is built for capacity ${BENCH_CAPACITY}`);
  }

  @multiplexed({ maxModelsPerReplica: BENCH_CAPACITY })
  async model(id: string): Promise<Float32Array> {
    await new Promise((r) => setTimeout(r, this.options.loadMs));
    const weights = new Float32Array(256 * 1024);
    let seed = [...id].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7);
    for (let i = 0; i < weights.length; i++) {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      weights[i] = seed / 2 ** 32;
    }
    return weights;
  }

  async predict(id: string, x: number): Promise<number> {
    const w = await this.model(id);
    return w[x % w.length]! * x;
  }
}

export const benchApp = (options: BenchModelOptions) => MuxBench.bind(options);
