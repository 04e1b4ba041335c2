/**
 * Streams cut by an agent's death (kill -9 of `serve agent`, its replica process with it): a head with
 * its HTTP and gRPC proxies, one agent hosting examples/cluster.ts's GpuWorker. A core SSE stream
 * through the head's Front (which relays the worker's stream) ends with `event: error` ACTOR_DIED
 * naming the node, and a gRPC Serve.Stream to the worker with UNAVAILABLE: never a bare cut.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, expect, it } from 'vitest';
import { startServe, type ServeInstance } from '@flotilla/core';
import { Ingress } from '../../packages/core/src/ingress/ingress.js';
import { eventually } from '../helpers/eventually.js';
import { repoRoot } from '../helpers/models.js';
import { app } from '../../examples/cluster.js';
import { serveClient } from '../helpers/ingress.js';

const children: ChildProcess[] = [];
let instance: ServeInstance | undefined;
let ingress: Ingress | undefined;
let client: any;

afterAll(async () => {
  client?.close();
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await ingress?.close(500);
  await instance?.shutdown();
});

/** `serve agent` as users run it; resolves once it joined. */
async function startAgent(address: string, nodeId: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      path.join(repoRoot, 'bin/serve.js'),
      'agent',
      '--address',
      address,
      '--node-id',
      nodeId,
      '--gpus',
      '1',
      '--no-proxy',
    ],
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
  return child;
}

it('kill -9 of an agent mid-stream: SSE through a relaying replica gets `event: error`, gRPC UNAVAILABLE', {
  timeout: 180_000,
}, async () => {
  instance = await startServe({ applications: [], resources: { gpus: 0 }, checkpoint: false, cluster: { port: 0 } });
  const agent = await startAgent(instance.cluster!.address, 'n1');
  await instance.apply([{ name: 'c', app }], { timeoutS: 90 });
  ingress = await Ingress.start(instance, { http: { port: 0 }, grpc: { port: 0 }, events: instance.events });
  client = serveClient(ingress.grpc!.address);

  let grpcFirst!: () => void;
  const grpcStarted = new Promise<void>((r) => {
    grpcFirst = r;
  });
  let sseFirst!: () => void;
  const sseStarted = new Promise<void>((r) => {
    sseFirst = r;
  });
  const sse = (async () => {
    const res = await fetch(`${ingress!.http!.url}/count`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify([400, 100]),
    });
    expect(res.status).toBe(200);
    let text = '';
    for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
      text += Buffer.from(bytes).toString('utf8');
      sseFirst();
    }
    return text;
  })();
  const grpcOutcome = new Promise<{ items: number; error?: grpc.ServiceError }>((resolve) => {
    const call = client.Stream({
      application: 'c',
      deployment: 'GpuWorker',
      method: 'count',
      payload: Buffer.from(JSON.stringify([400, 100])),
    });
    let items = 0;
    call.on('data', () => {
      if (items++ === 0) grpcFirst();
    });
    call.on('error', (error: grpc.ServiceError) => resolve({ items, error }));
    call.on('end', () => resolve({ items }));
  });
  await Promise.all([sseStarted, grpcStarted]);
  agent.kill('SIGKILL');

  const text = await sse;
  const events = text.split('\n\n').filter(Boolean);
  expect(events.length).toBeGreaterThan(1);
  const last = events.at(-1)!;
  expect(last.startsWith('event: error\ndata: ')).toBe(true);
  const body = JSON.parse(last.slice('event: error\ndata: '.length));
  expect(body.error.code).toBe('ACTOR_DIED');
  expect(body.error.message).toMatch(/node n1/);
  expect(events.slice(0, -1).every((e) => e.startsWith('data: {"i":'))).toBe(true);

  const g = await grpcOutcome;
  expect(g.items).toBeGreaterThan(0);
  expect(g.error?.code).toBe(grpc.status.UNAVAILABLE);
  expect(g.error?.details).toMatch(/node n1/);
});
