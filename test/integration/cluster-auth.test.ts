/**
 * The cluster port's authentication, attacked with real gRPC clients (@grpc/grpc-js over
 * protos/cluster.proto) on a real head: a stranger without the cluster token, or with a wrong one, gets
 * UNAUTHENTICATED from every RPC (unary and streams) and changes nothing: no node joins, no module is
 * imported, no routes or status leak. A live node's id cannot be taken by a second registration (the
 * live agent keeps serving); an expired one can be registered again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ClusterError, startServe, type ServeInstance } from '@flotilla/core';
import { ClusterAgent } from '../../packages/core/src/cluster/agent.js';
import { CLUSTER_PROTOCOL_VERSION, clusterService } from '../../packages/core/src/cluster/cluster-proto.js';
import { defaultTokenPath, findToken } from '../../packages/core/src/cluster/cluster-token.js';
import { acceptDeploys } from '../../packages/core/src/cli/deploy-command.js';
import { eventually } from '../helpers/eventually.js';
import { app as gpuApp } from '../../examples/cluster.js';

type RawClient = grpc.Client & Record<string, any>;

function rawClient(address: string): RawClient {
  const { Client } = clusterService();
  return new Client(address, grpc.credentials.createInsecure()) as RawClient;
}

function auth(value?: string): grpc.Metadata {
  const md = new grpc.Metadata();
  if (value !== undefined) md.set('authorization', value);
  return md;
}

function unary<T>(client: RawClient, method: string, request: unknown, md: grpc.Metadata) {
  return new Promise<{ err: grpc.ServiceError | null; reply?: T }>((resolve) =>
    client[method](request, md, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, reply: T) =>
      resolve({ err, reply }),
    ),
  );
}

/**
 * How a stream ended: its error (or null) and the messages it got. One still open after 3 s (an
 * authenticated ProxyChannel) is cancelled, which ends it with CANCELLED.
 */
function streamOutcome(call: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>) {
  const got: unknown[] = [];
  call.on('data', (d: unknown) => got.push(d));
  const timer = setTimeout(() => call.cancel(), 3000);
  return new Promise<{ err: grpc.ServiceError | null; got: unknown[] }>((resolve) => {
    call.on('error', (err: grpc.ServiceError) => resolve({ err, got }));
    call.on('end', () => resolve({ err: null, got }));
  }).finally(() => clearTimeout(timer));
}

const register = (nodeId: string, gpus: number) => ({
  node_id: nodeId,
  address: 'attacker',
  resources: { cpus: 64, gpus, memory_mb: 1 << 20 },
  labels: {},
  protocol_version: CLUSTER_PROTOCOL_VERSION,
  pid: 1,
});

/**
 * Every RPC of the Cluster service with metadata `md`: each one's gRPC status code (undefined: OK), and
 * what the caller got back (ProxyState's reply, stream messages).
 */
async function tryEveryRpc(address: string, md: grpc.Metadata, modulePath: string) {
  const client = rawClient(address);
  try {
    const codes: Record<string, number | undefined> = {};
    const got: unknown[] = [];
    codes.RegisterNode = (await unary(client, 'RegisterNode', register('intruder', 8), md)).err?.code;
    codes.Heartbeat = (
      await unary(client, 'Heartbeat', { node_id: 'intruder', session_id: 'x', actors: 0 }, md)
    ).err?.code;
    const state = await unary<{ routes_json: string; status_json: string }>(client, 'ProxyState', { node_id: '' }, md);
    codes.ProxyState = state.err?.code;
    if (state.reply) got.push(state.reply);
    codes.Deploy = (await unary(client, 'Deploy', { module_path: modulePath, export_name: 'app' }, md)).err?.code;
    const commands = await streamOutcome(client.Commands({ node_id: 'intruder', session_id: 'x' }, md));
    got.push(...commands.got);
    codes.Commands = commands.err?.code;
    const actorMd = md.clone();
    actorMd.set('x-flotilla-actor-id', 'c#GpuWorker#1');
    actorMd.set('x-flotilla-node-id', 'intruder');
    const actor = client.ActorChannel(actorMd);
    const actorEnd = streamOutcome(actor);
    actor.write({ message: Buffer.from('hello') });
    const actorOutcome = await actorEnd;
    got.push(...actorOutcome.got);
    codes.ActorChannel = actorOutcome.err?.code;
    const proxyMd = md.clone();
    proxyMd.set('x-flotilla-node-id', 'intruder');
    const proxy = client.ProxyChannel(proxyMd);
    const proxyEnd = streamOutcome(proxy);
    proxy.write({ message: Buffer.from('hello') });
    const proxyOutcome = await proxyEnd;
    got.push(...proxyOutcome.got);
    codes.ProxyChannel = proxyOutcome.err?.code;
    return { codes, got };
  } finally {
    client.close();
  }
}

const EVERY_RPC = ['RegisterNode', 'Heartbeat', 'ProxyState', 'Deploy', 'Commands', 'ActorChannel', 'ProxyChannel'];

/** A module that leaves a marker file when imported: proof of whether a Deploy ran the caller's code. */
function markerModule(): { modulePath: string; marker: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-deploy-probe-'));
  const marker = path.join(dir, 'imported');
  const modulePath = path.join(dir, 'probe.mjs');
  writeFileSync(
    modulePath,
    `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'x');\n`,
  );
  return { modulePath, marker };
}

describe('cluster port authentication', { timeout: 120_000 }, () => {
  let instance: ServeInstance | undefined;
  const agents: ClusterAgent[] = [];
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.close();
    await instance?.shutdown();
    instance = undefined;
  });

  async function head(extra: Record<string, unknown> = {}, log?: (line: string) => void) {
    instance = await startServe({
      applications: [],
      resources: { gpus: 0 },
      checkpoint: false,
      cluster: { port: 0, log, ...extra },
    });
    acceptDeploys(instance);
    return instance.cluster!.address;
  }

  it('a stranger without the token gets UNAUTHENTICATED from every RPC and changes nothing', async () => {
    const lines: string[] = [];
    const address = await head({}, (l) => lines.push(l));
    // The head generated its token in this file's config directory, mode 0600, and logged where, not what.
    const tokenFile = defaultTokenPath();
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(tokenFile)).mode & 0o777).toBe(0o700);
    const token = findToken()!.token;
    expect(lines.join('\n')).toContain(tokenFile);
    expect(lines.join('\n')).not.toContain(token);

    const { modulePath, marker } = markerModule();
    const { codes, got } = await tryEveryRpc(address, auth(), modulePath);
    expect(codes).toEqual(Object.fromEntries(EVERY_RPC.map((m) => [m, grpc.status.UNAUTHENTICATED])));
    expect(got).toEqual([]);
    expect(existsSync(marker)).toBe(false);
    expect(instance!.status().nodes!.map((n) => n.id)).toEqual(['local']);
    // One line names the peer's address (further refusals within a second are counted, not printed).
    const refusal = lines.find((l) => l.startsWith('refused '));
    expect(refusal).toMatch(/^refused RegisterNode from (ipv4:)?127\.0\.0\.1:\d+: no cluster token/);

    // The control: the same calls with the token get past authentication (and Deploy imports the module).
    const allowed = await tryEveryRpc(address, auth(`Bearer ${token}`), modulePath);
    for (const m of EVERY_RPC) expect(allowed.codes[m], m).not.toBe(grpc.status.UNAUTHENTICATED);
    expect(allowed.got[0]).toMatchObject({ routes_json: '[]' });
    expect(existsSync(marker)).toBe(true);
  });

  it('a wrong or malformed token is refused the same way, and never logged', async () => {
    const lines: string[] = [];
    const address = await head({ token: 'the-right-token-0123456789' }, (l) => lines.push(l));
    const { modulePath, marker } = markerModule();
    const wrong = 'the-wrong-token-0123456789';
    const { codes, got } = await tryEveryRpc(address, auth(`Bearer ${wrong}`), modulePath);
    expect(codes).toEqual(Object.fromEntries(EVERY_RPC.map((m) => [m, grpc.status.UNAUTHENTICATED])));
    expect(got).toEqual([]);
    // A prefix of the right token, and the right token without "Bearer", are no better.
    const client = rawClient(address);
    for (const value of ['Bearer the-right-token', 'the-right-token-0123456789', 'Bearer ']) {
      const { err } = await unary(client, 'ProxyState', { node_id: '' }, auth(value));
      expect(err?.code, value).toBe(grpc.status.UNAUTHENTICATED);
    }
    client.close();
    expect(existsSync(marker)).toBe(false);
    expect(instance!.status().nodes!.map((n) => n.id)).toEqual(['local']);
    expect(lines.find((l) => l.startsWith('refused '))).toMatch(/from (ipv4:)?127\.0\.0\.1:\d+: a wrong cluster token/);
    const logged = lines.join('\n');
    expect(logged).not.toContain(wrong);
    expect(logged).not.toContain('the-right-token');
  });

  it('an agent with a wrong token is refused with UnauthenticatedError and a clear message', async () => {
    const address = await head({ token: 'the-right-token-0123456789' });
    const err = await ClusterAgent.start({ address, nodeId: 'w', token: 'not-the-token-0123456789' }).catch(
      (e: unknown) => e,
    );
    expect((err as Error).name).toBe('UnauthenticatedError');
    expect((err as Error).message).toMatch(/refused node 'w': a wrong cluster token/);
    expect((err as Error).message).not.toContain('not-the-token');
    agents.push(await ClusterAgent.start({ address, nodeId: 'ok', token: 'the-right-token-0123456789' }));
    await eventually(
      () => instance!.status().nodes!.map((n) => n.id),
      (ids) => ids.includes('ok'),
    );
  });

  it("a live node's id cannot be taken: the second registration is refused and the replica keeps serving", async () => {
    const address = await head();
    const token = findToken()!.token;
    const real = await ClusterAgent.start({ address, nodeId: 'n1', resources: { gpus: 1 } });
    agents.push(real);
    await instance!.apply([{ name: 'c', app: gpuApp }], { timeoutS: 90 });
    const worker = instance!.status().applications[0]!.deployments.find((d) => d.name === 'GpuWorker')!;
    const before = worker.replicas[0]!;
    expect(before).toMatchObject({ node: 'n1', state: 'RUNNING' });

    // An attacker with the token (or a misconfigured second agent) claims n1 with 8 GPUs.
    const client = rawClient(address);
    const { err } = await unary(client, 'RegisterNode', register('n1', 8), auth(`Bearer ${token}`));
    client.close();
    expect(err?.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(err?.details).toMatch(/node id 'n1' is held by a live agent/);
    // A second agent process under the same id gives up with that reason.
    const twin = await ClusterAgent.start({
      address,
      nodeId: 'n1',
      resources: { gpus: 8 },
      connectTimeoutMs: 1500,
    }).catch((e: unknown) => e);
    expect(twin).toBeInstanceOf(ClusterError);
    expect((twin as Error).message).toMatch(/refused node 'n1': node id 'n1' is held by a live agent/);

    // The real agent keeps its node, resources and replica.
    const n1 = instance!.status().nodes!.find((n) => n.id === 'n1')!;
    expect(n1).toMatchObject({ state: 'ALIVE', resources: { gpus: 1 }, replicas: 1 });
    expect(real.actorCount).toBe(1);
    const reply = (await instance!.getHandle('c').__call__('still here')) as { node: string; pid: number };
    expect(reply).toMatchObject({ text: 'still here', node: 'n1', pid: before.pid });
  });

  it('an expired node id (its agent silent past the heartbeat limit) may register again', async () => {
    const address = await head({ heartbeatIntervalMs: 200, missedHeartbeats: 2 });
    const md = auth(`Bearer ${findToken()!.token}`);
    const client = rawClient(address);
    try {
      expect((await unary(client, 'RegisterNode', register('ghost', 0), md)).err).toBeNull();
      expect((await unary(client, 'RegisterNode', register('ghost', 0), md)).err?.code).toBe(
        grpc.status.ALREADY_EXISTS,
      );
      // No heartbeats: DEAD after 2 missed intervals, then the id is free.
      await eventually(
        () => instance!.status().nodes!.find((n) => n.id === 'ghost')?.state,
        (s) => s === 'DEAD',
      );
      const again = await unary<{ session_id: string }>(client, 'RegisterNode', register('ghost', 0), md);
      expect(again.err).toBeNull();
      expect(again.reply!.session_id).toMatch(/\w/);
    } finally {
      client.close();
    }
  });
});
