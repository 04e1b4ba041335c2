/**
 * Latency of one call, sequentially, to a no-op replica: in the same thread (the replica's user-code
 * wrapper called directly — the floor, no transport), through a handle to a worker-thread replica, and
 * through a handle to a child-process replica.
 */
import { UserCallable } from '../../packages/core/src/replica/user-callable.js';
import type { DeploymentHandle } from '../../packages/core/src/handle.js';
import { NoopThread } from './noop-app.js';

export interface LatencyResult {
  path: 'local' | 'thread' | 'process';
  calls: number;
  p50Us: number;
  p99Us: number;
  meanUs: number;
}

async function time(calls: number, warmup: number, call: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await call();
  const samples: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = process.hrtime.bigint();
    await call();
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return samples.sort((a, b) => a - b);
}

function summarize(path: LatencyResult['path'], samples: number[]): LatencyResult {
  const pick = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!;
  return {
    path,
    calls: samples.length,
    p50Us: pick(0.5),
    p99Us: pick(0.99),
    meanUs: samples.reduce((a, b) => a + b, 0) / samples.length,
  };
}

export async function measureHandleLatency(
  handles: { thread: DeploymentHandle; process: DeploymentHandle },
  calls: number,
): Promise<LatencyResult[]> {
  const warmup = Math.min(500, calls);
  const local = new UserCallable(new NoopThread(), 'NoopThread');
  const ctx = {
    requestId: 'bench',
    signal: new AbortController().signal,
    app: 'bench',
    deployment: 'NoopThread',
    method: 'noop',
  };
  return [
    summarize('local', await time(calls, warmup, () => local.unary('noop', [1], ctx))),
    summarize('thread', await time(calls, warmup, () => handles.thread.remote('noop', [1]))),
    summarize('process', await time(calls, warmup, () => handles.process.remote('noop', [1]))),
  ];
}
