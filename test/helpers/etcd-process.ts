/**
 * A real etcd process (Debian's etcd-server: /usr/bin/etcd) on free loopback ports with a temporary data
 * directory, restartable on the same ports and data. No test framework here: the failover bench uses it
 * too; tests use etcd.ts, which kills it after the file.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export function etcdBinary(): string | undefined {
  if (process.env.FLOTILLA_ETCD && existsSync(process.env.FLOTILLA_ETCD)) return process.env.FLOTILLA_ETCD;
  const which = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
  const found = which.stdout.trim();
  return which.status === 0 && found ? found : undefined;
}

export const NO_ETCD_REASON =
  'no etcd binary (install Debian etcd-server: apt-get install etcd-server, or set FLOTILLA_ETCD)';

export interface TestEtcd {
  /** 'host:port' of its client URL. */
  address: string;
  /** Stops it (SIGKILL) and resolves once it exited. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data; resolves once it answers. */
  start(): Promise<void>;
  log(): string;
}

/** Starts an etcd and resolves once it answers. */
export async function launchEtcd(): Promise<TestEtcd> {
  const bin = etcdBinary();
  if (!bin) throw new Error(NO_ETCD_REASON);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-etcd-'));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const address = `127.0.0.1:${clientPort}`;
  let child: ChildProcess | undefined;
  let log = '';
  const start = async () => {
    const c = spawn(
      bin,
      [
        '--name',
        'test',
        '--data-dir',
        path.join(dir, 'data'),
        '--listen-client-urls',
        `http://${address}`,
        '--advertise-client-urls',
        `http://${address}`,
        '--listen-peer-urls',
        `http://127.0.0.1:${peerPort}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${peerPort}`,
        '--initial-cluster',
        `test=http://127.0.0.1:${peerPort}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.arch } },
    );
    child = c;
    c.stdout!.on('data', (d) => {
      log += d;
    });
    c.stderr!.on('data', (d) => {
      log += d;
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (c.exitCode !== null) throw new Error(`etcd exited with ${c.exitCode}:\n${log.slice(-2000)}`);
      try {
        const res = await fetch(`http://${address}/health`, { signal: AbortSignal.timeout(1000) });
        if (res.ok && ((await res.json()) as { health?: string }).health === 'true') return;
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline) throw new Error(`etcd did not answer within 30 s:\n${log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };
  await start();
  return { address, start, stop, log: () => log };
}

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}
