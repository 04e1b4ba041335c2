/**
 * Failover bench (issue #23): heads on one etcd elect a leader; kill -9 of the leader under steady load.
 * Prints a table and writes bench/results/failover-<timestamp>.json.
 *
 *   npx tsx bench/failover/run.ts [--kills 10] [--heads 3] [--ttl 2] [--work-ms 30] [--no-retry]
 *
 * Setup: a real etcd (Debian's etcd-server), `--heads` heads (`serve start --head --state etcd://…`), one
 * agent given every head's address, the cluster-survivor app (2 process replicas on the agent). Each round:
 * two clients send back to back through the agent's proxy and two through a standby's proxy; the leader is
 * SIGKILLed; the killed head is started again (a new standby) before the next round.
 *
 * Per kill: `leadS`, from the kill to a surviving head saying `"leader": true` on /-/status (polled every
 * 50 ms); `servingS`, from the kill to the first request (sent after the kill) answered through the new
 * leader's routers; `lost`, requests that failed (through proxies that stayed alive). Target: a standby
 * leads within 5 s, zero requests lost (with --retry-after-head-loss on the proxies, the default here;
 * `--no-retry` shows what is lost without it: the requests in flight at the kill). The replica pids are
 * checked to stay the same (re-adopted, not restarted).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { etcdBinary, launchEtcd } from '../../test/helpers/etcd-process.js';

const { values } = parseArgs({
  options: {
    kills: { type: 'string', default: '10' },
    heads: { type: 'string', default: '3' },
    ttl: { type: 'string', default: '2' },
    'work-ms': { type: 'string', default: '30' },
    'no-retry': { type: 'boolean', default: false },
  },
});
const kills = Number(values.kills);
const headCount = Math.max(2, Number(values.heads));
const workMs = Number(values['work-ms']);
const retry = !values['no-retry'];
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const serveBin = path.join(root, 'bin/serve.js');
const env = { ...process.env, FLOTILLA_CLUSTER_TOKEN: `failover-bench-${process.pid}-0123456789` };
const children: ChildProcess[] = [];

interface Proc {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

function serve(args: string[]): Proc {
  const child = spawn(process.execPath, [serveBin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  return { child, out: () => out, exited: new Promise((r) => child.on('close', r)) };
}

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

async function until<T>(
  get: () => T | Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = 120_000,
  stepMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out; last value ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

async function isLeader(http: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${http}/-/status`, { signal: AbortSignal.timeout(1000) });
    return ((await res.json()) as { leader?: boolean }).leader === true;
  } catch {
    return false;
  }
}

interface Head {
  cluster: number;
  http: number;
  proc: Proc;
}

interface Round {
  kill: number;
  leadS: number;
  servingS: number;
  requests: number;
  lost: number;
  failures: string[];
}

if (!etcdBinary()) {
  console.error('no etcd binary: install Debian etcd-server (apt-get install etcd-server) or set FLOTILLA_ETCD');
  process.exit(2);
}
const etcd = await launchEtcd();
const state = `etcd://${etcd.address}/failover-bench?ttl=${values.ttl}`;
const startHead = (cluster: number, http: number): Proc =>
  serve([
    'start',
    '--head',
    '--port',
    String(http),
    '--no-grpc',
    '--cluster-port',
    String(cluster),
    '--state',
    state,
    ...(retry ? ['--retry-after-head-loss'] : []),
  ]);

const rounds: Round[] = [];
try {
  const heads: Head[] = [];
  for (let i = 0; i < headCount; i++) {
    const [cluster, http] = [await freePort(), await freePort()];
    const proc = startHead(cluster, http);
    heads.push({ cluster, http, proc });
    await until(proc.out, (o) => /leading: |standing by; the leader is/.test(o) || proc.child.exitCode !== null);
  }
  const agentPort = await freePort();
  const agent = serve([
    'agent',
    '--address',
    heads.map((h) => `127.0.0.1:${h.cluster}`).join(','),
    '--gpus',
    '2',
    '--node-id',
    'bench-agent',
    '--http-port',
    String(agentPort),
    ...(retry ? ['--retry-after-head-loss'] : []),
  ]);
  await until(agent.out, (o) => /HTTP proxy on http/.test(o) || agent.child.exitCode !== null);
  const deploy = serve([
    'deploy',
    'test/fixtures/apps/cluster-survivor.ts:app',
    '--name',
    'bench',
    '--address',
    `127.0.0.1:${heads[0]!.cluster}`,
  ]);
  if ((await deploy.exited) !== 0) throw new Error(`deploy failed:\n${deploy.out()}`);
  const agentProxy = `http://127.0.0.1:${agentPort}`;
  const pidsOf = async (): Promise<number[]> => {
    const pids = new Set<number>();
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`${agentProxy}/where`, { method: 'POST', body: '[0]' });
      if (res.ok) pids.add(((await res.json()) as { pid: number }).pid);
    }
    return [...pids].sort();
  };
  const pidsBefore = await until(pidsOf, (p) => p.length === 2);

  for (let k = 1; k <= kills; k++) {
    const leader = (await until(
      async () => {
        for (const h of heads) if (await isLeader(h.http)) return h;
        return undefined;
      },
      (h) => h !== undefined,
    ))!;
    const standby = heads.find((h) => h !== leader)!;
    const proxies = [agentProxy, `http://127.0.0.1:${standby.http}`];
    await until(
      () =>
        fetch(`${proxies[1]}/where`, { method: 'POST', body: '[0]' }).then(
          (r) => r.ok,
          () => false,
        ),
      (ok) => ok,
    );
    const outcomes: { ok: boolean; sentAtMs: number; atMs: number; detail?: string }[] = [];
    let sending = true;
    const clients = proxies.flatMap((via) =>
      [0, 1].map(async () => {
        while (sending) {
          const sentAtMs = Date.now();
          try {
            const res = await fetch(`${via}/where`, { method: 'POST', body: JSON.stringify([workMs]) });
            const text = await res.text();
            outcomes.push({
              ok: res.ok,
              sentAtMs,
              atMs: Date.now(),
              ...(res.ok ? {} : { detail: text.slice(0, 200) }),
            });
          } catch (err) {
            outcomes.push({ ok: false, sentAtMs, atMs: Date.now(), detail: String(err) });
          }
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 1500));
    const killedAtMs = Date.now();
    leader.proc.child.kill('SIGKILL');
    const others = heads.filter((h) => h !== leader);
    await until(
      async () => (await Promise.all(others.map((h) => isLeader(h.http)))).some(Boolean),
      (v) => v,
    );
    const leadS = (Date.now() - killedAtMs) / 1000;
    await until(
      () => outcomes.some((o) => o.ok && o.sentAtMs > killedAtMs),
      (v) => v,
    );
    const firstServed = Math.min(...outcomes.filter((o) => o.ok && o.sentAtMs > killedAtMs).map((o) => o.atMs));
    await new Promise((r) => setTimeout(r, 1500));
    sending = false;
    await Promise.all(clients);
    const failed = outcomes.filter((o) => !o.ok);
    rounds.push({
      kill: k,
      leadS,
      servingS: (firstServed - killedAtMs) / 1000,
      requests: outcomes.length,
      lost: failed.length,
      failures: failed.slice(0, 3).map((f) => f.detail ?? ''),
    });
    const r = rounds.at(-1)!;
    console.log(
      `kill ${k}: a standby leads after ${r.leadS.toFixed(2)} s, serving after ${r.servingS.toFixed(2)} s, ` +
        `${r.lost} of ${r.requests} requests lost`,
    );
    // The killed head comes back as a standby.
    await leader.proc.exited;
    leader.proc = startHead(leader.cluster, leader.http);
    await until(leader.proc.out, (o) => /standing by; the leader is/.test(o) || leader.proc.child.exitCode !== null);
  }
  const pidsAfter = await pidsOf();

  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const leads = rounds.map((r) => r.leadS);
  const serving = rounds.map((r) => r.servingS);
  const summary = {
    kills: rounds.length,
    heads: headCount,
    leaseTtlS: Number(values.ttl),
    retryAfterHeadLoss: retry,
    leadMedianS: median(leads),
    leadMaxS: Math.max(...leads),
    servingMedianS: median(serving),
    servingMaxS: Math.max(...serving),
    requests: rounds.reduce((n, r) => n + r.requests, 0),
    lost: rounds.reduce((n, r) => n + r.lost, 0),
    replicasKept: JSON.stringify(pidsBefore) === JSON.stringify(pidsAfter),
  };
  console.log('');
  console.log(
    '| kills | leader after kill (median / max) | serving again (median / max) | requests | lost | replicas kept |',
  );
  console.log(
    '| ----- | ------------------------------- | ---------------------------- | -------- | ---- | ------------- |',
  );
  console.log(
    `| ${summary.kills} | ${summary.leadMedianS.toFixed(2)} s / ${summary.leadMaxS.toFixed(2)} s | ` +
      `${summary.servingMedianS.toFixed(2)} s / ${summary.servingMaxS.toFixed(2)} s | ${summary.requests} | ` +
      `${summary.lost} | ${summary.replicasKept ? 'yes (same pids)' : `no (${pidsBefore} → ${pidsAfter})`} |`,
  );
  const dir = path.join(root, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `failover-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify({ machine: { cpus: os.availableParallelism(), node: process.version }, summary, rounds }, null, 2),
  );
  console.log(`\nwrote ${path.relative(root, file)}`);
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await etcd.stop();
}
