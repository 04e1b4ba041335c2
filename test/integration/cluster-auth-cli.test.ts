/**
 * The cluster token as CLI users meet it: `serve start --head` generates one in the config directory
 * (mode 0600) and prints where, never what; `serve agent`, `serve deploy` and `serve status HOST:PORT` on
 * the same machine find it with no flag. On "another machine" (another, empty config directory) they are
 * refused with a clear error until given the token by FLOTILLA_CLUSTER_TOKEN or --token-file; a wrong
 * token is refused too.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eventually } from '../helpers/eventually.js';
import { cliProcesses, freePort } from '../helpers/cli-processes.js';

const { serve } = cliProcesses();

describe('cluster token through the CLI', { timeout: 240_000 }, () => {
  it('same machine: found in the config directory; another machine: refused until given the token', async () => {
    const headDir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-head-config-'));
    const otherDir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-other-config-'));
    const here = { FLOTILLA_CONFIG_DIR: headDir };
    const elsewhere = { FLOTILLA_CONFIG_DIR: otherDir };
    const clusterPort = await freePort();
    const address = `127.0.0.1:${clusterPort}`;
    const checkpoint = path.join(mkdtempSync(path.join(os.tmpdir(), 'flotilla-auth-cli-')), 'controller.json');
    const head = serve(
      [
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
      ],
      here,
    );
    const banner = await eventually(
      head.out,
      (o) => /serve deploy FILE:EXPORT/.test(o) || head.child.exitCode !== null,
      120_000,
    );
    const tokenFile = path.join(headDir, 'cluster-token');
    expect(banner).toContain(`generated a cluster token in ${tokenFile} (mode 0600)`);
    expect(banner).toMatch(/cluster port 127\.0\.0\.1:\d+: plaintext \(no TLS\), cluster token required/);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    const token = readFileSync(tokenFile, 'utf8').trim();
    expect(token.length).toBeGreaterThanOrEqual(40);

    // Same machine: no flag needed.
    const agent = serve(
      ['agent', '--address', address, '--node-id', 'same-machine', '--cpus', '1', '--no-proxy'],
      here,
    );
    await eventually(agent.out, (o) => o.includes('joined the head') || agent.child.exitCode !== null, 60_000);
    expect(agent.out()).toContain('joined the head');
    // (No application yet, so the table would not list nodes: read the JSON.)
    const status = serve(['status', '--address', address, '--json'], here);
    expect(await status.exited, status.out()).toBe(0);
    expect(JSON.parse(status.out()).nodes).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: 'same-machine', state: 'ALIVE' })]),
    );

    // Another machine without the token: each command refuses, saying where a token comes from.
    const noStatus = serve(['status', '--address', address], elsewhere);
    expect(await noStatus.exited).toBe(1);
    expect(noStatus.out()).toMatch(/refused to show its status: no cluster token for the head at 127\.0\.0\.1:\d+/);
    expect(noStatus.out()).toMatch(/FLOTILLA_CLUSTER_TOKEN/);
    const app = ['test/fixtures/apps/ingress-app.ts:greeter', 'greeting=hey', '--name', 'greet'];
    const noDeploy = serve(['deploy', ...app, '--address', address], elsewhere);
    expect(await noDeploy.exited).toBe(1);
    expect(noDeploy.out()).toMatch(/refused the deploy: no cluster token for the head/);

    // A wrong token in a file: refused by deploy and agent alike, and the wrong token is not echoed.
    const wrongFile = path.join(otherDir, 'wrong-token');
    const wrong = 'definitely-not-the-token-42';
    writeFileSync(wrongFile, `${wrong}\n`, { mode: 0o600 });
    const wrongDeploy = serve(['deploy', ...app, '--address', address, '--token-file', wrongFile], elsewhere);
    expect(await wrongDeploy.exited).toBe(1);
    expect(wrongDeploy.out()).toMatch(/refused the deploy: a wrong cluster token/);
    const wrongAgent = serve(
      ['agent', '--address', address, '--node-id', 'intruder', '--no-proxy', '--token-file', wrongFile],
      elsewhere,
    );
    expect(await wrongAgent.exited).not.toBe(0);
    expect(wrongAgent.out()).toMatch(/Could not join the head: .*a wrong cluster token/);
    expect(wrongAgent.out()).toMatch(/next: Give the agent the token the head uses/);
    for (const p of [wrongDeploy, wrongAgent, head]) expect(p.out()).not.toContain(wrong);

    // Given the token (environment, or a token file): accepted.
    const deployed = serve(['deploy', ...app, '--address', address], { ...elsewhere, FLOTILLA_CLUSTER_TOKEN: token });
    expect(await deployed.exited, deployed.out()).toBe(0);
    expect(deployed.out()).toMatch(/Deployed application 'greet'/);
    const tokenCopy = path.join(otherDir, 'token');
    writeFileSync(tokenCopy, token, { mode: 0o600 });
    const remote = serve(
      [
        'agent',
        '--address',
        address,
        '--node-id',
        'other-machine',
        '--cpus',
        '1',
        '--no-proxy',
        '--token-file',
        tokenCopy,
      ],
      elsewhere,
    );
    await eventually(remote.out, (o) => o.includes('joined the head') || remote.child.exitCode !== null, 60_000);
    const both = serve(['status', '--address', address, '--token-file', tokenCopy], elsewhere);
    expect(await both.exited, both.out()).toBe(0);
    expect(both.out()).toMatch(/other-machine\s+ALIVE/);
    expect(both.out()).toMatch(/greet/);

    // The head logged the refusals by peer address, never the token.
    expect(head.out()).toMatch(/refused \w+ from (ipv4:)?127\.0\.0\.1:\d+: (no cluster token|a wrong cluster token)/);
    for (const p of [head, agent, remote, status, both, deployed]) expect(p.out()).not.toContain(token);

    head.child.kill('SIGTERM');
    expect(await head.exited).toBe(0);
    for (const a of [agent, remote]) {
      a.child.kill('SIGTERM');
      expect(await a.exited).toBe(0);
    }
  });
});
