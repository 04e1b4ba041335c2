/**
 * Processes of the `serve` CLI (start, run, agent, deploy) started by an integration test file, with
 * their output collected, all SIGKILLed after the file if still running.
 */
import { afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { repoRoot } from './models.js';

export const serveBin = path.join(repoRoot, 'bin/serve.js');

/** Call once at the top of a test file: `serve(args)` starts a CLI process; `children` are killed afterAll. */
export function cliProcesses() {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  });
  /** `env` is added to this process's environment (which children inherit anyway). */
  function serve(args: string[], env: Record<string, string> = {}) {
    const child = spawn(process.execPath, [serveBin, ...args], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
    });
    child.stderr!.on('data', (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    return { child, exited, out: () => out };
  }
  return { serve, children };
}

/** A loopback TCP port free at the moment of asking. */
export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}
