/**
 * Controller restart in a cluster: the head (controller, routers, cluster port) is SIGKILLed while a
 * client sends requests through an agent's HTTP proxy, and started again from its checkpoint. The
 * replicas on the agent outlive it and are re-adopted (same pids); the agent's proxy holds requests
 * while the head is away, so only requests in flight at the crash may fail, each with a clear error.
 */
import { describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { eventually } from '../helpers/eventually.js';
import { repoRoot } from '../helpers/models.js';
import { cliProcesses, freePort, serveBin } from '../helpers/cli-processes.js';

const headScript = fileURLToPath(new URL('../fixtures/scripts/cluster-head.ts', import.meta.url));
const { serve, children } = cliProcesses();

/** The head script; resolves with its first stdout line (the RUNNING replicas' pids). */
function startHead(
  checkpoint: string,
  port: number,
): { child: ChildProcess; ready: Promise<{ pids: number[]; states: string[] }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', headScript, checkpoint, String(port)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const ready = new Promise<{ pids: number[]; states: string[] }>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve(JSON.parse(line)));
    child.once('exit', (code) => reject(new Error(`head script exited with ${code}`)));
  });
  return { child, ready };
}

/** The pids that served `calls` requests through the proxy (a failed request shows as its body). */
async function pidsVia(proxy: string, calls: number): Promise<Array<number | string>> {
  const pids = new Set<number | string>();
  for (let i = 0; i < calls; i++) {
    const res = await fetch(`${proxy}/where`, { method: 'POST', body: '[0]' });
    const body = (await res.json()) as { pid: number };
    pids.add(res.ok ? body.pid : JSON.stringify(body));
  }
  return [...pids].sort();
}

interface Outcome {
  ok: boolean;
  pid?: number;
  status?: number;
  error?: string;
  atMs: number;
}

describe('controller restart with replicas on an agent', { timeout: 480_000 }, () => {
  it("re-adopts the agent's replicas (same pids) and the agent's proxy keeps serving through the restart", async () => {
    const port = await freePort();
    const checkpoint = path.join(mkdtempSync(path.join(os.tmpdir(), 'flotilla-readopt-')), 'controller.json');
    const head1 = startHead(checkpoint, port);
    const agent = spawn(
      process.execPath,
      [serveBin, 'agent', '--address', `127.0.0.1:${port}`, '--gpus', '2', '--node-id', 'keeper', '--http-port', '0'],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(agent);
    let agentOut = '';
    agent.stdout!.on('data', (d) => {
      agentOut += d;
    });
    agent.stderr!.on('data', (d) => {
      agentOut += d;
    });
    const before = await head1.ready;
    expect(before.pids).toHaveLength(2);
    const proxyOut = await eventually(
      () => agentOut,
      (o) => /HTTP proxy on http/.test(o) || agent.exitCode !== null,
      60_000,
    );
    const proxy = /HTTP proxy on (http:\/\/[\d.]+:\d+)/.exec(proxyOut)![1]!;
    await eventually(
      () => fetch(`${proxy}/where`, { method: 'POST', body: '[0]' }).then((r) => r.status),
      (s) => s === 200,
      120_000,
    );

    // Two clients, back to back, for the whole test.
    const outcomes: Outcome[] = [];
    let sending = true;
    const clients = [0, 1].map(async () => {
      while (sending) {
        try {
          const res = await fetch(`${proxy}/where`, { method: 'POST', body: '[50]' });
          const body = (await res.json()) as { pid?: number; error?: { message?: string } };
          outcomes.push(
            res.ok
              ? { ok: true, pid: body.pid, atMs: Date.now() }
              : { ok: false, status: res.status, error: JSON.stringify(body), atMs: Date.now() },
          );
        } catch (err) {
          outcomes.push({ ok: false, error: String(err), atMs: Date.now() });
        }
      }
    });
    await eventually(
      () => outcomes.length,
      (n) => n >= 10,
      120_000,
    );

    const crashAtMs = Date.now();
    head1.child.kill('SIGKILL');
    await new Promise((r) => head1.child.once('exit', r));
    await eventually(
      () => agentOut,
      (o) => o.includes('lost the head'),
    );
    const head2 = startHead(checkpoint, port);
    const after = await head2.ready;
    expect(after.pids).toEqual(before.pids);
    expect(after.states).toEqual(['RUNNING', 'RUNNING']);
    const restartedAtMs = Date.now();
    await eventually(
      () => outcomes.filter((o) => o.ok && o.atMs > restartedAtMs).length,
      (n) => n >= 10,
      120_000,
    );
    sending = false;
    await Promise.all(clients);

    // The replicas served before and after with the same processes.
    const served = new Set(outcomes.filter((o) => o.ok).map((o) => o.pid));
    expect([...served].sort()).toEqual(before.pids);
    // Only requests in flight at the crash (one per client at most) may fail, and they say why.
    const failed = outcomes.filter((o) => !o.ok);
    expect(failed.length, JSON.stringify(failed)).toBeLessThanOrEqual(2);
    for (const f of failed) {
      expect(f.atMs).toBeGreaterThanOrEqual(crashAtMs);
      expect(f.status).toBe(503);
      expect(f.error).toMatch(/ACTOR_DIED|head/);
    }
    // Requests sent while the head was away were held, then served.
    expect(outcomes.some((o) => o.ok && o.atMs > crashAtMs && o.atMs < restartedAtMs + 5000)).toBe(true);
    expect(agentOut).toMatch(/re-adopted by the head/);

    head2.child.kill('SIGTERM');
    await new Promise((r) => head2.child.once('exit', r));
    agent.kill('SIGTERM');
    await new Promise((r) => agent.once('exit', r));
  });

  it("a restarted `serve start --head` deploys again what `serve deploy` gave it and re-adopts the agent's replicas", async () => {
    const port = await freePort();
    const checkpoint = path.join(mkdtempSync(path.join(os.tmpdir(), 'flotilla-readopt-')), 'controller.json');
    const headArgs = [
      'start',
      '--head',
      '--port',
      '0',
      '--no-grpc',
      '--cluster-port',
      String(port),
      '--checkpoint',
      checkpoint,
    ];
    const head1 = serve(headArgs);
    await eventually(head1.out, (o) => /serve deploy FILE:EXPORT/.test(o) || head1.child.exitCode !== null, 120_000);
    const agent = serve([
      'agent',
      '--address',
      `127.0.0.1:${port}`,
      '--gpus',
      '2',
      '--node-id',
      'keeper2',
      '--http-port',
      '0',
    ]);
    const agentOut = await eventually(
      agent.out,
      (o) => /HTTP proxy on http/.test(o) || agent.child.exitCode !== null,
      120_000,
    );
    const proxy = /HTTP proxy on (http:\/\/[\d.]+:\d+)/.exec(agentOut)![1]!;
    const deployed = serve([
      'deploy',
      'test/fixtures/apps/cluster-survivor.ts:app',
      '--name',
      's',
      '--address',
      `127.0.0.1:${port}`,
    ]);
    expect(await deployed.exited, deployed.out()).toBe(0);
    await eventually(
      () => fetch(`${proxy}/where`, { method: 'POST', body: '[0]' }).then((r) => r.status),
      (s) => s === 200,
      120_000,
    );
    const before = await eventually(
      () => pidsVia(proxy, 8),
      (p) => p.length === 2,
      120_000,
    );

    head1.child.kill('SIGKILL');
    await head1.exited;
    await eventually(agent.out, (o) => o.includes('lost the head'));
    const head2 = serve(headArgs);
    await eventually(head2.out, (o) => /serve deploy FILE:EXPORT/.test(o) || head2.child.exitCode !== null, 120_000);
    expect(head2.out()).toMatch(/restored application 's' \(route \/\) from the checkpoint/);
    expect(await pidsVia(proxy, 8)).toEqual(before);
    expect(agent.out()).toMatch(/re-adopted by the head/);

    head2.child.kill('SIGTERM');
    expect(await head2.exited).toBe(0);
    agent.child.kill('SIGTERM');
    await agent.exited;
  });
});
