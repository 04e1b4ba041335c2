/**
 * `serve status` against a running instance (the CLI as users run it, over HTTP): a healthy application
 * and one whose constructor throws, so the table must show FAILED with the cause, and --json the same.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ingress } from '../../packages/core/src/ingress/ingress.js';
import type { ServeStatus } from '../../packages/core/src/contract/status.js';
import { ServeInstance } from '../../packages/core/src/serve-instance.js';
import { app as brokenApp } from '../fixtures/apps/dash-broken.js';
import { app as dashApp } from '../fixtures/apps/dash-app.js';
import { eventually } from '../helpers/ingress.js';
import { repoRoot } from '../helpers/models.js';

describe('serve status', () => {
  let instance: ServeInstance;
  let ingress: Ingress;

  beforeAll(async () => {
    // Not startServe(): it would stop everything when one application fails, and the failure is the point.
    instance = new ServeInstance({
      applications: [
        { name: 'dash', routePrefix: '/', app: dashApp },
        { name: 'broken', routePrefix: '/broken', app: brokenApp },
      ],
    });
    ingress = await Ingress.start(instance, { http: { port: 0 }, grpc: false, events: instance.events });
    await eventually(
      () => {
        const apps = instance.status().applications;
        return (
          apps.find((a) => a.name === 'dash')?.status === 'RUNNING' &&
          apps.find((a) => a.name === 'broken')?.status === 'DEPLOY_FAILED'
        );
      },
      60_000,
      'one application running and one failed',
    );
  }, 90_000);

  afterAll(async () => {
    await ingress?.close(500);
    await instance?.shutdown();
  });

  it("prints a readable table with replicas and the failed deployment's cause", async () => {
    const { code, stdout, stderr } = await cli(['status', '--address', ingress.http!.url]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/application dash\s+RUNNING\s+route \//);
    expect(stdout).toMatch(/DashFront\s+HEALTHY\s+2\/2/);
    expect(stdout).toMatch(/DashWorker\s+HEALTHY\s+1\/1/);
    expect(stdout.match(/dash\.DashFront\.\S+\s+RUNNING\s+thread/g)).toHaveLength(2);
    expect(stdout).toMatch(/application broken\s+DEPLOY_FAILED/);
    expect(stdout).toMatch(/DashBroken\s+FAILED/);
    expect(stdout).toMatch(/DashBroken: .*weights file \/nonexistent\/dash\.bin is missing/);
    expect(stdout).toContain('next: fix the cause above');
    expect(stdout).toMatch(/dash\.DashWorker\.\S+\s+RUNNING\s+thread\s+\d+\s+local/);
  });

  it('prints the same status as JSON with --json', async () => {
    const { code, stdout } = await cli(['status', '--json', '--address', ingress.http!.url]);
    expect(code).toBe(0);
    const status = JSON.parse(stdout) as ServeStatus;
    expect(status.http).toBe(ingress.http!.url);
    const broken = status.applications.find((a) => a.name === 'broken')!;
    expect(broken.status).toBe('DEPLOY_FAILED');
    expect(broken.deployments[0]!.status).toBe('FAILED');
    expect(broken.deployments[0]!.message).toContain('weights file /nonexistent/dash.bin is missing');
    const front = status.applications.find((a) => a.name === 'dash')!.deployments.find((d) => d.name === 'DashFront')!;
    expect(front.replicas.map((r) => r.state)).toEqual(['RUNNING', 'RUNNING']);
  });

  it('says what to do when no instance answers', async () => {
    const { code, stderr } = await cli(['status', '--address', 'http://127.0.0.1:9']);
    expect(code).toBe(1);
    expect(stderr).toContain('Cannot reach Flotilla');
    expect(stderr).toContain('next:');
  });
});

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/serve.js'), ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}
