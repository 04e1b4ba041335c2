/**
 * Cluster edge cases with an in-process ClusterAgent (the programmatic entry `serve agent` wraps):
 * cancellation across the remote hop, bad cluster input (unreachable head, protocol version mismatch, a
 * resource request no node can meet) giving clear errors, and the CLI's own error for an unreachable head.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ClusterError, UnavailableError, startServe, type ServeInstance } from '@flotilla/core';
import { ClusterAgent } from '../../packages/core/src/cluster/agent.js';
import { clusterService } from '../../packages/core/src/cluster/cluster-proto.js';
import { findToken } from '../../packages/core/src/cluster/cluster-token.js';
import { eventually } from '../helpers/eventually.js';
import { repoRoot } from '../helpers/models.js';
import { app as streaming } from '../fixtures/apps/streaming.js';
import { app as gpuApp } from '../../examples/cluster.js';

describe('cluster: cancellation and bad input', { timeout: 120_000 }, () => {
  let instance: ServeInstance | undefined;
  let agent: ClusterAgent | undefined;
  afterEach(async () => {
    await instance?.shutdown();
    await agent?.close();
    instance = undefined;
    agent = undefined;
  });

  it('breaking out of a stream cancels the generator on the remote node (its finally runs)', async () => {
    instance = await startServe({ applications: [], resources: { gpus: 0 }, checkpoint: false, cluster: { port: 0 } });
    agent = await ClusterAgent.start({ address: instance.cluster!.address, nodeId: 'n1', resources: { gpus: 1 } });
    // Source asks for a GPU through the config, so it runs on n1; Relay (a local process) streams from it.
    await instance.apply([{ name: 'stream', app: streaming() }], {
      config: { applications: [{ name: 'stream', deployments: [{ name: 'Source', resources: { gpus: 1 } }] }] },
      timeoutS: 60,
    });
    const source = instance.status().applications[0]!.deployments.find((d) => d.name === 'Source')!;
    expect(source.replicas[0]).toMatchObject({ node: 'n1', placement: 'remote' });
    const requestId = 'remote-break-1';
    const got: unknown[] = [];
    for await (const x of instance.getHandle('stream').options({ requestId }).stream.ticks(1000, 20)) {
      got.push(x);
      if (got.length === 3) break;
    }
    expect(got).toEqual([{ tick: 0 }, { tick: 1 }, { tick: 2 }]);
    const sourceHandle = instance.getHandle('stream', 'Source');
    await eventually(
      () => sourceHandle.wasFinalized(requestId),
      (done) => done === true,
    );
    expect(await sourceHandle.producedCount(requestId)).toBeLessThan(100);
  });

  it('a node without the application code at the same path fails the replica with that reason', async () => {
    const dir = path.join(repoRoot, '.tmp', `cluster-missing-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'gone.ts');
    writeFileSync(
      file,
      "import { deployment } from '@flotilla/core';\n" +
        '@deployment({ resources: { gpus: 1 }, maxConstructorRetries: 1 })\nexport class Gone { hi() { return 1; } }\nexport const app = Gone.bind();\n',
    );
    const { app } = await import(pathToFileURL(file).href);
    instance = await startServe({ applications: [], resources: { gpus: 0 }, checkpoint: false, cluster: { port: 0 } });
    agent = await ClusterAgent.start({ address: instance.cluster!.address, nodeId: 'bare', resources: { gpus: 1 } });
    const applying = instance.apply([{ name: 'g', app }], { timeoutS: 60 }).catch((e: unknown) => e);
    // The module goes missing after the head read it, as on a node whose checkout lacks it.
    rmSync(dir, { recursive: true, force: true });
    const err = await applying;
    expect((err as Error).message).toMatch(
      /module .*gone\.ts is not on this node; the code must be at the same path on every node/,
    );
  });

  it('an agent pointed at no head fails with ClusterError naming the address', async () => {
    const err = await ClusterAgent.start({ address: '127.0.0.1:1', nodeId: 'x', connectTimeoutMs: 500 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ClusterError);
    expect((err as Error).message).toMatch(/cannot reach the head at 127\.0\.0\.1:1/);
  });

  it('`serve agent` with an unreachable head exits non-zero with the cause and a next step', async () => {
    const child = spawn(
      process.execPath,
      [path.join(repoRoot, 'bin/serve.js'), 'agent', '--address', '127.0.0.1:1', '--connect-timeout', '300'],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (d) => {
      stderr += d;
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).not.toBe(0);
    expect(stderr).toMatch(
      /Could not join the head: (ClusterError: )?cannot reach the head at 127\.0\.0\.1:1: .*(ECONNREFUSED|No connection)/,
    );
    expect(stderr).toContain('next:');
  });

  it('the head refuses an agent of another protocol version, saying so', async () => {
    instance = await startServe({ applications: [], checkpoint: false, cluster: { port: 0 } });
    const { Client } = clusterService();
    const client = new Client(instance.cluster!.address, grpc.credentials.createInsecure()) as grpc.Client &
      Record<string, any>;
    // With the head's token (it generated one in this file's FLOTILLA_CONFIG_DIR): only the version is wrong.
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${findToken()!.token}`);
    const err = await new Promise<grpc.ServiceError>((resolve) =>
      client.RegisterNode(
        { node_id: 'old', protocol_version: 99, resources: { cpus: 1, gpus: 0, memory_mb: 100 } },
        metadata,
        (e: grpc.ServiceError) => resolve(e),
      ),
    );
    client.close();
    expect(err.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err.details).toMatch(/version mismatch: the agent speaks cluster protocol v99, this head v2/);
    expect(instance.status().nodes!.map((n) => n.id)).toEqual(['local']);
  });

  it('a resource request no node meets leaves the deployment waiting with the reason, and startServe says why', async () => {
    const err = await startServe({
      applications: [{ name: 'c', app: gpuApp }],
      resources: { gpus: 0 },
      checkpoint: false,
      cluster: { port: 0 },
      startupTimeoutS: 2,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(
      /c\/GpuWorker: UPDATING \(no node can take a replica needing 0 CPUs, 1 GPUs, 0 MiB now.*local: needs 1 GPUs, the node has 0\)/,
    );
  });
});
