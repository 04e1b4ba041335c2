/**
 * A cluster as a Ray Serve user starts one: `serve start --head` (no application), `serve agent`
 * (which also runs an HTTP proxy on its node), then `serve deploy FILE:EXPORT --address HEAD` adds
 * applications to the running head. Requests through the agent's proxy reach replicas wherever they
 * run (the GPU worker on the agent, the front end on the head), streams included.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eventually } from '../helpers/eventually.js';
import { cliProcesses, freePort } from '../helpers/cli-processes.js';

const { serve } = cliProcesses();

describe('serve start --head, serve deploy, and a proxy on every node', { timeout: 480_000 }, () => {
  it("deploys onto a running head and serves through the head and the agent's proxy", async () => {
    const clusterPort = await freePort();
    const address = `127.0.0.1:${clusterPort}`;
    const checkpoint = path.join(mkdtempSync(path.join(os.tmpdir(), 'flotilla-start-')), 'controller.json');
    const head = serve([
      'start',
      '--head',
      '--port',
      '0',
      '--grpc-port',
      '0',
      '--cluster-port',
      String(clusterPort),
      '--checkpoint',
      checkpoint,
    ]);
    const headBanner = await eventually(
      head.out,
      (o) => /serve deploy FILE:EXPORT/.test(o) || head.child.exitCode !== null,
      120_000,
    );
    const headUrl = /(http:\/\/127\.0\.0\.1:\d+)\/-\/healthz/.exec(headBanner)?.[1];
    expect(headUrl, headBanner).toBeDefined();
    expect(await (await fetch(`${headUrl}/-/routes`)).json()).toEqual({ routes: [] });

    const agent = serve(['agent', '--address', address, '--gpus', '1', '--node-id', 'edge', '--http-port', '0']);
    const agentOut = await eventually(
      agent.out,
      (o) => /HTTP proxy on http/.test(o) || agent.child.exitCode !== null,
      120_000,
    );
    const proxyUrl = /HTTP proxy on (http:\/\/[\d.]+:\d+)/.exec(agentOut)?.[1];
    expect(proxyUrl, agentOut).toBeDefined();

    const deployed = serve(['deploy', 'examples/cluster.ts:app', '--address', address]);
    expect(await deployed.exited, deployed.out()).toBe(0);
    expect(deployed.out()).toMatch(/Deployed application 'default' \(route \/\)/);

    const viaHead = await fetch(`${headUrl}/`, { method: 'POST', body: '"via head"' });
    expect(await viaHead.json()).toMatchObject({ text: 'via head', node: 'edge' });
    // The agent's proxy learns routes on its next poll.
    const viaAgent = await eventually(
      () => fetch(`${proxyUrl}/`, { method: 'POST', body: '"via agent"' }),
      (r) => r.status === 200,
    );
    expect(await viaAgent.json()).toMatchObject({ text: 'via agent', node: 'edge' });
    const streamed = await fetch(`${proxyUrl}/count`, {
      method: 'POST',
      body: '[3, 10]',
      headers: { accept: 'text/event-stream' },
    });
    expect(streamed.status).toBe(200);
    const events = (await streamed.text()).split('\n').filter((l) => l.startsWith('data:'));
    expect(events.length).toBeGreaterThanOrEqual(3);

    // A second application next to the first; the first keeps serving.
    const second = serve([
      'deploy',
      'test/fixtures/apps/ingress-app.ts:greeter',
      'greeting=hey',
      '--name',
      'greet',
      '--route-prefix',
      '/greet',
      '--address',
      address,
    ]);
    expect(await second.exited, second.out()).toBe(0);
    const greeted = await eventually(
      () => fetch(`${proxyUrl}/greet/greet`, { method: 'POST', body: '"ada"' }),
      (r) => r.status === 200,
    );
    expect(await greeted.json()).toBe('hey, ada');
    expect((await fetch(`${headUrl}/`, { method: 'POST', body: '"still"' })).status).toBe(200);

    // A route prefix that another application holds is refused, saying which.
    const clash = serve(['deploy', 'test/fixtures/apps/ingress-app.ts:squarer', '--name', 'sq', '--address', address]);
    expect(await clash.exited).toBe(1);
    expect(clash.out()).toMatch(/route prefix '\/' is taken by application 'default'/);

    const status = serve(['status', '--address', proxyUrl!]);
    expect(await status.exited).toBe(0);
    expect(status.out()).toMatch(/greet/);
    expect(status.out()).toMatch(/edge\s+ALIVE/);

    head.child.kill('SIGTERM');
    expect(await head.exited).toBe(0);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });

  it('serve deploy explains an unreachable head', async () => {
    const port = await freePort();
    const deployed = serve(['deploy', 'examples/cluster.ts:app', '--address', `127.0.0.1:${port}`, '--timeout', '1']);
    expect(await deployed.exited).toBe(1);
    expect(deployed.out()).toMatch(/Cannot reach the head at 127\.0\.0\.1:\d+/);
    expect(deployed.out()).toMatch(/serve start --head/);
  });
});
