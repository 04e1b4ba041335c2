/**
 * The cluster as users start it: `serve run … --cluster-port P` and `serve agent --address 127.0.0.1:P`
 * as separate processes; HTTP through the head reaches the replica on the agent, `serve status` lists
 * the nodes, and both stop cleanly on SIGTERM (the agent first notices that the head is gone).
 */
import { describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.js';
import { cliProcesses, freePort } from '../helpers/cli-processes.js';

const { serve } = cliProcesses();

describe('serve run --cluster-port and serve agent', { timeout: 180_000 }, () => {
  it('serves through an agent and shuts down cleanly', async () => {
    const clusterPort = await freePort();
    const head = serve([
      'run',
      'examples/cluster.ts:app',
      '--port',
      '0',
      '--grpc-port',
      '0',
      '--cluster-port',
      String(clusterPort),
    ]);
    const agent = serve([
      'agent',
      '--address',
      `127.0.0.1:${clusterPort}`,
      '--gpus',
      '1',
      '--node-id',
      'cli-gpu',
      '--label',
      'zone=a',
      '--http-port',
      '0',
    ]);
    const banner = await eventually(
      head.out,
      (o) => /Cluster head: agents join/.test(o) || head.child.exitCode !== null,
      120_000,
    );
    const url = /(http:\/\/127\.0\.0\.1:\d+)\/-\/healthz/.exec(banner)?.[1];
    expect(url, banner).toBeDefined();
    const res = await fetch(`${url}/`, { method: 'POST', body: '"via cli"' });
    expect(await res.json()).toMatchObject({ text: 'via cli', node: 'cli-gpu', cuda: '0' });
    // The agent's own proxy serves the same application.
    const proxy = /HTTP proxy on (http:\/\/[\d.]+:\d+)/.exec(
      await eventually(agent.out, (o) => /HTTP proxy on/.test(o)),
    )![1];
    const viaAgent = await eventually(
      () => fetch(`${proxy}/`, { method: 'POST', body: '"via agent"' }),
      (r) => r.status === 200,
    );
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
