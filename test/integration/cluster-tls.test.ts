/**
 * TLS and mutual TLS on the cluster port, with a CA and certificates made by the `openssl` CLI for the
 * test: an agent that trusts the CA joins and hosts a replica over TLS; one that trusts another CA, or
 * speaks plaintext, fails with a clear error; a head that requires client certificates refuses a client
 * without one (even with the right token) and accepts an agent with one.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ClusterError, startServe, type ServeInstance } from '@flotilla/core';
import { ClusterAgent } from '../../packages/core/src/cluster/agent.js';
import { fetchClusterStatus } from '../../packages/core/src/cluster/cluster-client.js';
import { CLUSTER_PROTOCOL_VERSION, clusterService } from '../../packages/core/src/cluster/cluster-proto.js';
import { findToken } from '../../packages/core/src/cluster/cluster-token.js';
import type { ClusterServerTls } from '../../packages/core/src/cluster/cluster-tls.js';
import { eventually } from '../helpers/eventually.js';
import { app as gpuApp } from '../../examples/cluster.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-cluster-tls-'));
const f = (name: string) => path.join(dir, name);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA (self-signed, P-256) named `name`: name.key, name.crt. */
function makeCa(name: string): void {
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    f(`${name}.key`),
    '-out',
    f(`${name}.crt`),
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
}

/** A leaf certificate `name` signed by `ca`, with extensions `ext` (SANs, usage). */
function makeLeaf(name: string, ca: string, ext: string): void {
  openssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    f(`${name}.key`),
    '-out',
    f(`${name}.csr`),
    '-subj',
    `/CN=${name}`,
  );
  writeFileSync(f(`${name}.ext`), ext);
  openssl(
    'x509',
    '-req',
    '-in',
    f(`${name}.csr`),
    '-CA',
    f(`${ca}.crt`),
    '-CAkey',
    f(`${ca}.key`),
    '-CAcreateserial',
    '-out',
    f(`${name}.crt`),
    '-days',
    '2',
    '-extfile',
    f(`${name}.ext`),
  );
}

beforeAll(() => {
  makeCa('cluster-ca');
  makeCa('other-ca');
  makeLeaf(
    'head',
    'cluster-ca',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n',
  );
  makeLeaf('agent', 'cluster-ca', 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n');
  makeLeaf('stranger', 'other-ca', 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cluster port over TLS', { timeout: 120_000 }, () => {
  let instance: ServeInstance | undefined;
  const agents: ClusterAgent[] = [];
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.close();
    await instance?.shutdown();
    instance = undefined;
  });

  async function tlsHead(tls: Partial<ClusterServerTls> = {}): Promise<string> {
    instance = await startServe({
      applications: [],
      resources: { gpus: 0 },
      checkpoint: false,
      cluster: { port: 0, tls: { certFile: f('head.crt'), keyFile: f('head.key'), ...tls } },
    });
    return instance.cluster!.address;
  }

  const nodeIds = () => instance!.status().nodes!.map((n) => n.id);

  it('an agent that trusts the CA joins over TLS and hosts a replica; status reads over TLS', async () => {
    const address = await tlsHead();
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
    agents.push(
      await ClusterAgent.start({
        address,
        nodeId: 'tls-1',
        resources: { gpus: 1 },
        tls: { caFile: f('cluster-ca.crt') },
      }),
    );
    await instance!.apply([{ name: 'c', app: gpuApp }], { timeoutS: 90 });
    expect(await instance!.getHandle('c').__call__('over tls')).toMatchObject({ text: 'over tls', node: 'tls-1' });
    const status = await fetchClusterStatus(address, { tls: { caFile: f('cluster-ca.crt') } });
    expect(status.nodes!.find((n) => n.id === 'tls-1')).toMatchObject({ state: 'ALIVE', replicas: 1 });
  });

  it('an agent that trusts another CA, or speaks plaintext, fails with a clear error', async () => {
    const address = await tlsHead();
    const untrusting = await ClusterAgent.start({
      address,
      nodeId: 'doubter',
      connectTimeoutMs: 1500,
      tls: { caFile: f('other-ca.crt') },
    }).catch((e: unknown) => e);
    expect(untrusting).toBeInstanceOf(ClusterError);
    expect((untrusting as Error).message).toMatch(/cannot reach the head at 127\.0\.0\.1:\d+/);
    expect((untrusting as Error).message).toMatch(
      /TLS with the head failed: is --tls-ca the CA that signed the head's certificate/,
    );

    const plaintext = await ClusterAgent.start({ address, nodeId: 'plain', connectTimeoutMs: 1500 }).catch(
      (e: unknown) => e,
    );
    expect(plaintext).toBeInstanceOf(ClusterError);
    expect((plaintext as Error).message).toMatch(/cannot reach the head at 127\.0\.0\.1:\d+/);
    expect((plaintext as Error).message).toMatch(/if the head uses TLS on this port, pass --tls-ca/);
    expect(nodeIds()).toEqual(['local']);
  });

  it('an agent dialling TLS to a plaintext head is told the head does not speak TLS', async () => {
    instance = await startServe({ applications: [], resources: { gpus: 0 }, checkpoint: false, cluster: { port: 0 } });
    const err = await ClusterAgent.start({
      address: instance.cluster!.address,
      nodeId: 'tls-only',
      connectTimeoutMs: 1500,
      tls: { caFile: f('cluster-ca.crt') },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClusterError);
    expect((err as Error).message).toMatch(/the head does not speak TLS on this port/);
  });

  it('mutual TLS refuses a client without a certificate (token or not) and accepts an agent with one', async () => {
    const address = await tlsHead({ caFile: f('cluster-ca.crt'), requireClientCert: true });
    // A raw gRPC client with the right token but no certificate: the handshake fails, no call reaches the head.
    const { Client } = clusterService();
    const client = new Client(address, grpc.credentials.createSsl(readFileSync(f('cluster-ca.crt')))) as grpc.Client &
      Record<string, any>;
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${findToken()!.token}`);
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.RegisterNode(
        {
          node_id: 'certless',
          resources: { cpus: 1, gpus: 8, memory_mb: 1 },
          protocol_version: CLUSTER_PROTOCOL_VERSION,
        },
        md,
        { deadline: Date.now() + 5000 },
        (e: grpc.ServiceError | null) => resolve(e),
      ),
    );
    client.close();
    expect(err?.code).toBe(grpc.status.UNAVAILABLE);

    const certless = await ClusterAgent.start({
      address,
      nodeId: 'certless',
      connectTimeoutMs: 1500,
      tls: { caFile: f('cluster-ca.crt') },
    }).catch((e: unknown) => e);
    expect(certless).toBeInstanceOf(ClusterError);
    expect((certless as Error).message).toMatch(/cannot reach the head/);
    expect((certless as Error).message).toMatch(/the head requires a client certificate signed by its CA/);

    // A certificate from another CA is no better.
    const foreign = await ClusterAgent.start({
      address,
      nodeId: 'foreign',
      connectTimeoutMs: 1500,
      tls: { caFile: f('cluster-ca.crt'), certFile: f('stranger.crt'), keyFile: f('stranger.key') },
    }).catch((e: unknown) => e);
    expect(foreign).toBeInstanceOf(ClusterError);
    expect(nodeIds()).toEqual(['local']);

    agents.push(
      await ClusterAgent.start({
        address,
        nodeId: 'mtls-1',
        tls: { caFile: f('cluster-ca.crt'), certFile: f('agent.crt'), keyFile: f('agent.key') },
      }),
    );
    await eventually(nodeIds, (ids) => ids.includes('mtls-1'));
  });
});
