/**
 * A head (startServe with a cluster port) and node agents as separate `serve agent` processes on
 * loopback: a deployment that needs a GPU lands on the agent that offers one, is called through a
 * handle, over HTTP and streamed; killing the agent fails requests in flight clearly and moves the
 * replica to another agent that fits, or leaves the deployment waiting with the reason in its status.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ActorDiedError, startServe, type ServeInstance } from '@flotilla/core';
import { Ingress } from '../../packages/core/src/ingress/ingress.js';
import { eventually } from '../helpers/eventually.js';
import { repoRoot } from '../helpers/models.js';
import { app } from '../../examples/cluster.js';

const bin = path.join(repoRoot, 'bin/serve.js');
const children: ChildProcess[] = [];

/** `serve agent` as users run it; resolves once it printed that it joined. */
async function startAgent(
  address: string,
  nodeId: string,
  extra: string[] = [],
): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(
    process.execPath,
    [bin, 'agent', '--address', address, '--node-id', nodeId, '--cpus', '2', '--no-proxy', ...extra],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  await eventually(
    () => out,
    (o) => o.includes('joined the head') || child.exitCode !== null,
    60_000,
  );
  if (child.exitCode !== null) throw new Error(`agent exited: ${out}`);
  return { child, output: () => out };
}

const nodeOf = (instance: ServeInstance, id: string) => instance.status().nodes?.find((n) => n.id === id);
const workerReplicas = (instance: ServeInstance) =>
  instance.status().applications[0]!.deployments.find((d) => d.name === 'GpuWorker')!.replicas;

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

describe('cluster: head and agents on loopback', { timeout: 180_000 }, () => {
  let instance: ServeInstance | undefined;
  let ingress: Ingress | undefined;
  afterEach(async () => {
    await ingress?.close(500);
    await instance?.shutdown();
    instance = undefined;
    ingress = undefined;
  });

  it('places the GPU deployment on the agent, serves calls, HTTP and streams, and survives losing the agent', async () => {
    instance = await startServe({ applications: [], resources: { gpus: 0 }, checkpoint: false, cluster: { port: 0 } });
    const address = instance.cluster!.address;
    const a1 = await startAgent(address, 'n1', ['--gpus', '1']);
    await eventually(
      () => nodeOf(instance!, 'n1')?.state,
      (s) => s === 'ALIVE',
    );

    await instance.apply([{ name: 'c', app }], { timeoutS: 90 });
    const [replica] = workerReplicas(instance);
    expect(replica).toMatchObject({ state: 'RUNNING', placement: 'remote', node: 'n1' });
    const front = instance.status().applications[0]!.deployments.find((d) => d.name === 'Front')!.replicas[0]!;
    expect(front.node).toBe('local');
    expect(nodeOf(instance, 'n1')).toMatchObject({ replicas: 1, resources: { gpus: 1 }, free: { gpus: 0 } });

    // Through a handle (Front on the head relays to GpuWorker on n1), and directly.
    const handle = instance.getHandle('c');
    expect(await handle.__call__('hi')).toMatchObject({ text: 'hi', node: 'n1', cuda: '0' });
    const worker = instance.getHandle('c', 'GpuWorker');
    const where = (await worker.where()) as { pid: number };
    expect(where.pid).toBe(replica!.pid);

    // Streams cross the head → agent hop with credits, from a replica's own handle too.
    const items: unknown[] = [];
    for await (const x of handle.stream.count(5, 5)) items.push(x);
    expect(items).toEqual([0, 1, 2, 3, 4].map((i) => ({ i, node: 'n1' })));

    ingress = await Ingress.start(instance, { http: { port: 0 }, grpc: false, events: instance.events });
    const res = await fetch(`${ingress.http!.url}/`, { method: 'POST', body: JSON.stringify('over http') });
    const body = await res.text();
    expect(res.status, body).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ text: 'over http', node: 'n1' });

    // Kill -9 the agent: the in-flight request fails clearly (never hangs), the node is dead with the
    // reason, and with no other GPU node the deployment waits and says why.
    const inFlight = worker.slow(30_000);
    await new Promise((r) => setTimeout(r, 300));
    a1.child.kill('SIGKILL');
    const err = await inFlight.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ActorDiedError);
    expect((err as Error).message).toMatch(/node n1/);
    await eventually(
      () => nodeOf(instance!, 'n1')?.state,
      (s) => s === 'DEAD',
    );
    expect(nodeOf(instance, 'n1')!.message).toMatch(/connection|heartbeat/);
    const waiting = await eventually(
      () => instance!.status().applications[0]!.deployments.find((d) => d.name === 'GpuWorker')!,
      (d) => d.replicas.length === 0 && /no node can take a replica needing .*1 GPUs/.test(d.message ?? ''),
    );
    expect(waiting.message).toMatch(/local: needs 1 GPUs, the node has 0/);

    // A new GPU node joins: the replica is placed there and requests succeed again.
    await startAgent(address, 'n2', ['--gpus', '1']);
    await eventually(
      () => workerReplicas(instance!),
      (rs) => rs.some((r) => r.state === 'RUNNING' && r.node === 'n2'),
      60_000,
    );
    expect(await handle.__call__('back')).toMatchObject({ text: 'back', node: 'n2' });
  });

  it('a node that stops heartbeating (frozen, connection still open) is declared dead and its replica replaced', async () => {
    instance = await startServe({
      applications: [],
      resources: { gpus: 0 },
      checkpoint: false,
      cluster: { port: 0, heartbeatIntervalMs: 500, missedHeartbeats: 4 },
    });
    const address = instance.cluster!.address;
    const frozen = await startAgent(address, 'f1', ['--gpus', '1']);
    await instance.apply([{ name: 'c', app }], { timeoutS: 90 });
    expect(workerReplicas(instance)[0]).toMatchObject({ node: 'f1', state: 'RUNNING' });
    await startAgent(address, 'f2', ['--gpus', '1']);
    frozen.child.kill('SIGSTOP');
    try {
      await eventually(
        () => nodeOf(instance!, 'f1'),
        (n) => n?.state === 'DEAD',
        30_000,
      );
      expect(nodeOf(instance, 'f1')!.message).toMatch(/missed \d+ heartbeats/);
      await eventually(
        () => workerReplicas(instance!),
        (rs) => rs.some((r) => r.state === 'RUNNING' && r.node === 'f2'),
        60_000,
      );
      expect(await instance.getHandle('c').__call__('x')).toMatchObject({ node: 'f2' });
    } finally {
      frozen.child.kill('SIGKILL');
    }
  });
});
