/**
 * `@batch({ maxBatchSize, batchWaitTimeoutMs })`: concurrent calls of a one-argument method arrive as
 * one call with an array, like Ray Serve's @serve.batch. The method must return an array of results of
 * the same length (result i answers call i); if it throws, every call of the batch fails with that error.
 */
import { BadRequestError, UserCodeError } from './errors.js';

export interface BatchOptions {
  /** Most calls grouped into one. Default: 10. */
  maxBatchSize?: number;
  /** How long the first call of a batch waits for more, in milliseconds. Default: 10. */
  batchWaitTimeoutMs?: number;
}

interface Pending<I, O> {
  input: I;
  resolve(value: O): void;
  reject(err: unknown): void;
}

/** Sizes of batches run in this process since the last take (the replica reports them with its stats). */
const batchLog: { method: string; size: number }[] = [];

export function takeBatchSizes(): { method: string; size: number }[] {
  return batchLog.splice(0, batchLog.length);
}

class Batcher<I, O> {
  private queue: Pending<I, O>[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly run: (inputs: I[]) => Promise<O[]>,
    private readonly method: string,
    private readonly maxBatchSize: number,
    private readonly waitMs: number,
  ) {}

  submit(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (this.queue.length >= this.maxBatchSize) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.waitMs);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue.splice(0, this.maxBatchSize);
    if (this.queue.length > 0) this.timer = setTimeout(() => this.flush(), this.waitMs);
    if (batch.length === 0) return;
    batchLog.push({ method: this.method, size: batch.length });
    if (batchLog.length > 10_000) batchLog.splice(0, batchLog.length - 10_000);
    void this.execute(batch);
  }

  private async execute(batch: Pending<I, O>[]): Promise<void> {
    try {
      const results = await this.run(batch.map((p) => p.input));
      if (!Array.isArray(results) || results.length !== batch.length) {
        throw new UserCodeError(
          `@batch method ${this.method} returned ${Array.isArray(results) ? results.length : typeof results} ` +
            `results for ${batch.length} inputs`,
        );
      }
      batch.forEach((p, i) => p.resolve(results[i] as O));
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}

export function batch(options: BatchOptions = {}) {
  const maxBatchSize = options.maxBatchSize ?? 10;
  const waitMs = options.batchWaitTimeoutMs ?? 10;
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1)
    throw new BadRequestError(`@batch: maxBatchSize must be an integer >= 1, got ${maxBatchSize}`);
  if (!(waitMs >= 0)) throw new BadRequestError(`@batch: batchWaitTimeoutMs must be >= 0, got ${waitMs}`);
  // Typed as returning the method unchanged: TypeScript cannot change a method's type from a decorator,
  // and callers (handles, the proxy) call it with one input at run time.
  return function decorate<M extends (this: any, inputs: any[]) => unknown>(
    method: M,
    context: ClassMethodDecoratorContext,
  ): M {
    const batchers = new WeakMap<object, Batcher<unknown, unknown>>();
    const name = String(context.name);
    return function (this: object, input: unknown): Promise<unknown> {
      let batcher = batchers.get(this);
      if (!batcher) {
        batcher = new Batcher(
          async (inputs) => (await method.call(this, inputs)) as unknown[],
          name,
          maxBatchSize,
          waitMs,
        );
        batchers.set(this, batcher);
      }
      return batcher.submit(input);
    } as unknown as M;
  };
}
