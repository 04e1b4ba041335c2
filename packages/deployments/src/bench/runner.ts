/**
 * Runs one benchmark pass: sends each request at its scheduled time (never more than maxConcurrency at
 * once, when given), waits for all, and returns per-request results and the pass's wall time.
 * The sender is a parameter so tests can drive the runner with a fake on plain data.
 */
import type { BenchRequest } from './datasets.js';
import type { RequestResult } from './request-result.js';

export type Sender = (req: BenchRequest, runStartMs: number) => Promise<RequestResult>;

export interface RunOptions {
  /** Send times in ms after the start (arrivalSchedule()), one per request. */
  schedule: readonly number[];
  /** Most requests in flight; later arrivals wait for a slot. Default: unlimited. */
  maxConcurrency?: number;
  /** Called after each request finishes, e.g. to move a progress bar. Default: none. */
  onDone?: (done: number, total: number) => void;
}

export interface RunResult {
  results: RequestResult[];
  /** From the first send to the last response, ms. */
  durationMs: number;
}

export async function runRequests(
  requests: readonly BenchRequest[],
  send: Sender,
  opts: RunOptions,
): Promise<RunResult> {
  if (opts.schedule.length !== requests.length) throw new RangeError('one send time per request is needed');
  const slots = new Semaphore(opts.maxConcurrency ?? Infinity);
  const start = performance.now();
  const results = new Array<RequestResult>(requests.length);
  let done = 0;
  const pending: Promise<void>[] = [];
  for (let i = 0; i < requests.length; i++) {
    const wait = start + opts.schedule[i]! - performance.now();
    if (wait > 0) await sleep(wait);
    await slots.acquire();
    pending.push(
      send(requests[i]!, start).then((r) => {
        results[i] = r;
        slots.release();
        opts.onDone?.(++done, requests.length);
      }),
    );
  }
  await Promise.all(pending);
  return { results, durationMs: performance.now() - start };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A counting semaphore; Infinity never blocks. */
class Semaphore {
  private free: number;
  private readonly waiters: Array<() => void> = [];

  constructor(limit: number) {
    if (!(limit >= 1)) throw new RangeError(`max concurrency must be >= 1 (got ${limit})`);
    this.free = limit;
  }

  acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.free++;
  }
}
