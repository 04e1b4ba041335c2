/**
 * A stateless task deployment's calls, run on a piscina pool of worker threads inside the replica
 * (`@deployment({ pool: { maxThreads } })`). Each pool thread builds the class once (pool-worker.ts);
 * a call runs on whichever thread is free, so CPU-bound methods of one replica run in parallel. Cancelling
 * a call (client disconnect, AbortSignal, timeout) drops it from the pool's queue, or stops the thread
 * running it (piscina replaces the thread).
 *
 * Same surface as UserCallable, so the replica serves both alike. No lifecycle methods run (there is no
 * instance in the replica's own thread), streaming methods are refused, and constructor arguments must
 * be plain data (no handles).
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { BadRequestError, DeploymentConfigError, NotFoundError } from '../errors.js';
import { errorFromWire } from '../actor/protocol.js';
import { isHandleDescriptor } from '../handle.js';
import { abortReason, type Cancellation } from '../actor/cancellation.js';
import { methodsOf } from './user-callable.js';
import type { MethodKind } from '../contract/routes.js';
import type { PoolOptions } from '../contract/deployment-options.js';
import type { PoolTask, PoolTaskResult, PoolWorkerData } from './pool-worker.js';

const BOOTSTRAP = fileURLToPath(new URL('./pool-bootstrap.mjs', import.meta.url));

export class TaskPool {
  readonly methods: Record<string, MethodKind>;
  readonly rawHttp = false;
  private readonly pool: Piscina;

  constructor(cls: abstract new (...a: any[]) => unknown, data: PoolWorkerData, options: PoolOptions) {
    if (data.args.some(containsHandle)) {
      throw new DeploymentConfigError(
        `deployment ${data.deployment}: a pool deployment takes plain constructor arguments, not handles`,
      );
    }
    // The prototype is enough to list the methods: no instance is built in this thread.
    this.methods = methodsOf(Object.create(cls.prototype as object) as object);
    const streaming = Object.keys(this.methods).filter((m) => this.methods[m] === 'stream');
    if (streaming.length > 0) {
      throw new DeploymentConfigError(
        `deployment ${data.deployment}: a pool deployment cannot have streaming methods (${streaming.join(', ')})`,
      );
    }
    const maxThreads = options.maxThreads ?? 2;
    this.pool = new Piscina({
      filename: BOOTSTRAP,
      workerData: data,
      execArgv: [],
      minThreads: Math.min(options.minThreads ?? 1, maxThreads),
      maxThreads,
      idleTimeout: options.idleTimeoutMs ?? 60_000,
    });
  }

  /** Threads the pool runs now (for tests and status). */
  get threads(): number {
    return this.pool.threads.length;
  }

  async unary(method: string, args: unknown[], ctx: { requestId: string; cancel?: Cancellation }): Promise<unknown> {
    if (!Object.hasOwn(this.methods, method)) {
      throw new NotFoundError(`no method '${method}' (methods: ${Object.keys(this.methods).join(', ') || 'none'})`, {
        method,
      });
    }
    const cancel = ctx.cancel;
    if (cancel?.aborted) throw abortReason(cancel);
    const task: PoolTask = { method, args, requestId: ctx.requestId };
    let result: PoolTaskResult;
    try {
      result = (await this.pool.run(task, cancel ? { signal: cancel.signal } : {})) as PoolTaskResult;
    } catch (err) {
      if (cancel?.aborted) throw abortReason(cancel);
      throw err;
    }
    if (!result.ok) throw errorFromWire(result.error);
    return result.value;
  }

  /** A unary method called as a stream yields its one result. */
  stream(method: string, args: unknown[], ctx: { requestId: string; cancel?: Cancellation }): AsyncIterable<unknown> {
    const self = this;
    if (this.methods[method] === 'stream')
      throw new BadRequestError(`${method} is a streaming method; pool deployments have none`);
    return (async function* () {
      yield await self.unary(method, args, ctx);
    })();
  }

  async checkHealth(): Promise<void> {}
  async reconfigure(): Promise<void> {}
  async autoscalingMetrics(): Promise<undefined> {
    return undefined;
  }
  async collectMetrics(): Promise<unknown[]> {
    return [];
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }

  /** Stops the pool's threads (the instances in them are not disposed one by one: they end with their threads). */
  dispose(): Promise<void> {
    return this.close();
  }
}

function containsHandle(value: unknown): boolean {
  if (isHandleDescriptor(value)) return true;
  if (Array.isArray(value)) return value.some(containsHandle);
  if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.values(value).some(containsHandle);
  }
  return false;
}
