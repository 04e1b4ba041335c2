/**
 * The `serve` CLI as users run it: a child process through bin/serve.js (tsx), real ports, real signals.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { eventually } from '../helpers/ingress.js';
import { repoRoot } from '../helpers/models.js';

const bin = path.join(repoRoot, 'bin/serve.js');
const tmpDir = path.join(repoRoot, '.tmp', `ingress-cli-${process.pid}`);
const children: ChildProcess[] = [];

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(tmpDir, { recursive: true, force: true });
});

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

function serve(args: string[]): { child: ChildProcess; done: Promise<Outcome>; stdout: () => string } {
  const child = spawn(process.execPath, [bin, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const done = new Promise<Outcome>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done, stdout: () => stdout };
}

async function waitForBanner(read: () => string, timeoutMs = 150_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = /(http:\/\/127\.0\.0\.1:\d+)\/-\/healthz/.exec(read());
    if (m) return m[1]!;
    if (Date.now() > deadline) throw new Error(`no banner after ${timeoutMs} ms; stdout: ${read()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('serve run on a broken module', { timeout: 120_000 }, () => {
  it('reports a syntax error with the file and exits non-zero', async () => {
    mkdirSync(tmpDir, { recursive: true });
    const file = path.join(tmpDir, 'ingress-broken-syntax.ts');
    writeFileSync(
      file,
      "import { deployment } from '@flotilla/core';\n@deployment()\nexport class S { hi() { return 1 +; } }\nexport const app = S.bind();\n",
    );
    const { code, stderr } = await serve([
      'run',
      `${path.relative(repoRoot, file)}:app`,
      '--port',
      '0',
      '--grpc-port',
      '0',
    ]).done;
    expect(code).not.toBe(0);
    expect(stderr).toContain('ingress-broken-syntax.ts');
    expect(stderr).toMatch(/Unexpected|Expected/);
    expect(stderr).toContain('next:');
  });

  it('names a missing export and lists the existing ones', async () => {
    const { code, stderr } = await serve(['run', 'test/fixtures/apps/ingress-app.ts:nope', '--port', '0']).done;
    expect(code).not.toBe(0);
    expect(stderr).toContain("has no export 'nope'");
    expect(stderr).toContain('narrow');
  });

  it('names the deployment whose option value is bad', async () => {
    const { code, stderr } = await serve(['run', 'test/fixtures/apps/ingress-broken-option.ts:app', '--port', '0'])
      .done;
    expect(code).not.toBe(0);
    expect(stderr).toContain('ingress-broken-option.ts');
    expect(stderr).toContain('IngressBadOption');
    expect(stderr).toContain('numReplicas');
  });

  it('names the deployment whose constructor throws, and the cause', async () => {
    const { code, stderr } = await serve([
      'run',
      'test/fixtures/apps/ingress-broken-ctor.ts:app',
      '--port',
      '0',
      '--grpc-port',
      '0',
    ]).done;
    expect(code).not.toBe(0);
    expect(stderr).toContain('ingress-broken-ctor.ts');
    expect(stderr).toContain('IngressExploding');
    expect(stderr).toContain('/nonexistent/weights.bin is missing');
  });
});

describe('serve run, status, shutdown, SIGTERM', () => {
  // Each step spawns a CLI process through tsx; on a loaded 2-core machine that alone can take seconds.
  const slow = 180_000;

  it(
    'runs a builder with key=value args, reports status, and stops on `serve shutdown`',
    async () => {
      const run = serve([
        'run',
        'test/fixtures/apps/ingress-app.ts:greeter',
        'greeting=ahoy',
        '--port',
        '0',
        '--grpc-port',
        '0',
      ]);
      const url = await waitForBanner(run.stdout);
      const greet = await fetch(`${url}/greet`, { method: 'POST', body: '"sailor"' });
      expect(await greet.json()).toBe('ahoy, sailor');
      const status = await serve(['status', '--address', url]).done;
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/IngressGreeter\s+HEALTHY\s+1\/1/);
      const json = JSON.parse((await serve(['status', '--json', '--address', url]).done).stdout);
      expect(json.applications[0].deployments[0].replicas[0].state).toBe('RUNNING');
      const shutdown = await serve(['shutdown', '--address', url]).done;
      expect(shutdown.code).toBe(0);
      expect((await run.done).code).toBe(0);
    },
    slow,
  );

  it(
    'drains on SIGTERM: the in-flight request finishes, then exit 0',
    async () => {
      const running = serve(['run', 'test/fixtures/apps/ingress-app.ts:app', '--port', '0', '--grpc-port', '0']);
      const url = await waitForBanner(running.stdout);
      const inflight = fetch(`${url}/sleep`, { method: 'POST', body: '[2000]' });
      // SIGTERM only once the request is inside the proxy (else it would rightly get 503 while draining).
      await eventually(
        async () =>
          /flotilla_proxy_ongoing_requests\{protocol="http"\} 1/.test(await (await fetch(`${url}/metrics`)).text()),
        30_000,
        'the request to be in flight',
      );
      running.child.kill('SIGTERM');
      const answered = await inflight;
      expect(answered.status).toBe(200);
      expect(await answered.json()).toEqual({ slept: 2000 });
      const exit = await running.done;
      expect(exit.code).toBe(0);
      expect(exit.stdout).toContain('Flotilla stopped.');
    },
    slow,
  );

  it('explains an unreachable instance', { timeout: 120_000 }, async () => {
    const { code, stderr } = await serve(['status', '--address', 'http://127.0.0.1:9']).done;
    expect(code).not.toBe(0);
    expect(stderr).toContain('Cannot reach Flotilla');
    expect(stderr).toContain('next:');
  });
});
