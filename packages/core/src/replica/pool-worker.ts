/**
 * Runs inside each thread of a task pool (task-pool.ts): builds the user's class once per thread from
 * piscina's workerData, then runs one method call per task, in a request context like a replica's.
 * Errors come back as wire errors, so that they are rebuilt as the same class (a thrown Error crossing
 * postMessage would lose it).
 */
import { pathToFileURL } from 'node:url';
import { threadId, workerData } from 'node:worker_threads';
import { findRegisteredDeployment } from '../deployment.js';
import { requestContextStorage, setReplicaContext } from '../request-context.js';
import { errorToWire, type WireError } from '../actor/protocol.js';

/** What a pool thread is started with (piscina's workerData). */
export interface PoolWorkerData {
  replicaId: string;
  app: string;
  deployment: string;
  className: string;
  modulePath: string;
  args: unknown[];
  gpuIds: number[];
}

export interface PoolTask {
  method: string;
  args: unknown[];
  requestId: string;
}

export type PoolTaskResult = { ok: true; value: unknown } | { ok: false; error: WireError };

let instance: Promise<object> | undefined;

async function construct(data: PoolWorkerData): Promise<object> {
  setReplicaContext({
    replicaId: `${data.replicaId}#${threadId}`,
    app: data.app,
    deployment: data.deployment,
    gpuIds: data.gpuIds,
  });
  await import(pathToFileURL(data.modulePath).href);
  const definition = findRegisteredDeployment(data.className);
  if (!definition) throw new Error(`no @deployment class named '${data.className}' in ${data.modulePath}`);
  return new (definition.cls as new (...a: unknown[]) => object)(...data.args);
}

export async function runPoolTask(task: PoolTask): Promise<PoolTaskResult> {
  const data = workerData as PoolWorkerData;
  try {
    instance ??= construct(data);
    const obj = await instance;
    const fn = (obj as Record<string, (...a: unknown[]) => unknown>)[task.method]!;
    // Cancelling a running task stops this thread (piscina), so the signal here never fires.
    const ctx = {
      requestId: task.requestId,
      signal: new AbortController().signal,
      app: data.app,
      deployment: data.deployment,
      method: task.method,
    };
    return { ok: true, value: await requestContextStorage.run(ctx, () => fn.apply(obj, task.args)) };
  } catch (err) {
    return { ok: false, error: errorToWire(err) };
  }
}
