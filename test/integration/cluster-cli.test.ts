/**
 * The cluster as users start it: `serve run … --cluster-port P` and `serve agent --address 127.0.0.1:P`
 * as separate processes; HTTP through the head reaches the replica on the agent, `serve status` lists
 * the nodes, and both stop cleanly on SIGTERM (the agent first notices that the head is gone).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { eventually } from '../helpers/eventually.js';
import { repoRoot } from '../helpers/models.js';

const bin = path.join(repoRoot, 'bin/serve.js');
const children: ChildProcess[] = [];
afterAll(() => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL'); });

function serve(args: string[]) {
  const child = spawn(process.execPath, [bin, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { child, exited, out: () => out };
}

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

describe('serve run --cluster-port and serve agent', { timeout: 180_000 }, () => {
  it('serves through an agent and shuts down cleanly', async () => {
    const clusterPort = await freePort();
    const head = serve(['run', 'examples/cluster.ts:app', '--port', '0', '--grpc-port', '0', '--cluster-port', String(clusterPort)]);
    const agent = serve(['agent', '--address', `127.0.0.1:${clusterPort}`, '--gpus', '1', '--node-id', 'cli-gpu', '--label', 'zone=a',
      '--http-port', '0']);
    const banner = await eventually(head.out, (o) => /Cluster head: agents join/.test(o) || head.child.exitCode !== null, 120_000);
    const url = /(http:\/\/127\.0\.0\.1:\d+)\/-\/healthz/.exec(banner)?.[1];
    expect(url, banner).toBeDefined();
    const res = await fetch(`${url}/`, { method: 'POST', body: '"via cli"' });
    expect(await res.json()).toMatchObject({ text: 'via cli', node: 'cli-gpu', cuda: '0' });
    // The agent's own proxy serves the same application.
    const proxy = /HTTP proxy on (http:\/\/[\d.]+:\d+)/.exec(await eventually(agent.out, (o) => /HTTP proxy on/.test(o)))![1];
    const viaAgent = await eventually(() => fetch(`${proxy}/`, { method: 'POST', body: '"via agent"' }), (r) => r.status === 200);
    expect(await viaAgent.json()).toMatchObject({ text: 'via agent', node: 'cli-gpu' });

    const status = serve(['status', '--address', url!]);
    expect(await status.exited).toBe(0);
    expect(status.out()).toMatch(/GpuWorker .*remote .*cli-gpu/);
    expect(status.out()).toMatch(/cli-gpu\s+ALIVE .*zone=a/);

    head.child.kill('SIGTERM');
    expect(await head.exited).toBe(0);
    await eventually(agent.out, (o) => o.includes('lost the head'));
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });
});
