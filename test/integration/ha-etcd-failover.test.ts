/**
 * Heads that share their controller state in a real etcd and elect a leader (serve start --head --state
 * etcd://...). Two heads, one agent given both addresses, one application deployed through the standby;
 * steady load through the agent's proxy and the standby's proxy; kill -9 of the leader: the standby leads,
 * the agent registers with it and its replicas are re-adopted (same pids), and with
 * --retry-after-head-loss no request is lost. Then etcd itself is killed and restarted: the heads
 * reconnect, a deploy afterwards reaches etcd, nothing is lost. And a head started against an etcd that
 * is down fails at once, naming the address.
 */
import { describe, expect, it } from 'vitest';
import { Etcd3 } from 'etcd3';
import { eventually } from '../helpers/eventually.js';
import { cliProcesses, freePort } from '../helpers/cli-processes.js';
import { etcdBinary, NO_ETCD_REASON, testEtcd } from '../helpers/etcd.js';

const { serve } = cliProcesses();
const env = { FLOTILLA_CLUSTER_TOKEN: 'ha-test-token-0123456789abcdef' };

interface Outcome {
  via: string;
  ok: boolean;
  pid?: number;
  detail?: string;
  sentAtMs: number;
  atMs: number;
}

interface Status {
  leader?: boolean;
  leaderHead?: { id: string; cluster: string; http?: string };
  state?: string;
  applications: { name: string; status: string }[];
}

async function status(http: string): Promise<Status> {
  return (await (await fetch(`${http}/-/status`)).json()) as Status;
}

describe.skipIf(!etcdBinary())('heads on etcd: election, failover, etcd restart', { timeout: 600_000 }, () => {
  const newEtcd = testEtcd();

  it('a standby takes over from a killed leader; agents and proxies follow; etcd restarts lose nothing', async () => {
    const etcd = await newEtcd();
    const state = `etcd://${etcd.address}/ha-test?ttl=2`;
    const [c1, c2, p1, p2, pa] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const head = (cluster: number, http: number) =>
      serve(
        [
          'start',
          '--head',
          '--port',
          String(http),
          '--no-grpc',
          '--cluster-port',
          String(cluster),
          '--state',
          state,
          '--retry-after-head-loss',
        ],
        env,
      );
    const h1 = head(c1, p1);
    await eventually(h1.out, (o) => /leading: 0 application/.test(o) || h1.child.exitCode !== null, 120_000);
    const h2 = head(c2, p2);
    await eventually(h2.out, (o) => /standing by; the leader is/.test(o) || h2.child.exitCode !== null, 120_000);
    const agent = serve(
      [
        'agent',
        '--address',
        `127.0.0.1:${c2},127.0.0.1:${c1}`,
        '--gpus',
        '2',
        '--node-id',
        'ha-a1',
        '--http-port',
        String(pa),
        '--retry-after-head-loss',
      ],
      env,
    );
    // The standby refused the agent, naming the leader, and the agent joined the leader.
    await eventually(
      agent.out,
      (o) => o.includes(`joined the head at 127.0.0.1:${c1}`) || agent.child.exitCode !== null,
      120_000,
    );

    // serve deploy to the standby reaches the leader.
    const deployed = serve(
      ['deploy', 'test/fixtures/apps/cluster-survivor.ts:app', '--name', 's', '--address', `127.0.0.1:${c2}`],
      env,
    );
    expect(await deployed.exited, deployed.out()).toBe(0);
    expect(h1.out()).not.toMatch(/could not/);

    const s1 = await status(`http://127.0.0.1:${p1}`);
    expect(s1.leader).toBe(true);
    expect(s1.state).toBe(`etcd://${etcd.address}/ha-test`);
    const s2 = await eventually(
      () => status(`http://127.0.0.1:${p2}`),
      (s) => s.applications.some((a) => a.name === 's' && a.status === 'RUNNING'),
      60_000,
    );
    expect(s2.leader).toBe(false);
    expect(s2.leaderHead?.cluster).toBe(`127.0.0.1:${c1}`);
    // serve status through the standby's cluster port names the leader.
    const st = serve(['status', '--address', `127.0.0.1:${c2}`], env);
    expect(await st.exited, st.out()).toBe(0);
    expect(st.out()).toMatch(new RegExp(`standby: the leader is \\S+ at 127\\.0\\.0\\.1:${c1} \\(state etcd://`));
    expect(st.out()).toMatch(/application s\s+RUNNING/);

    // The state is in etcd: the application's deploy request and its replicas on the agent.
    const client = new Etcd3({ hosts: etcd.address });
    const saved = await eventually(
      async () => JSON.parse((await client.get('/flotilla/ha-test/state').string()) ?? '{"apps":[]}'),
      (s: { apps: { name: string; source?: { module_path: string }; deployments: { replicas?: unknown[] }[] }[] }) =>
        s.apps.some((a) => a.name === 's' && a.deployments[0]?.replicas?.length === 2),
      60_000,
    );
    expect(saved.apps[0]?.source?.module_path).toMatch(/cluster-survivor\.ts$/);

    const proxies = [`http://127.0.0.1:${pa}`, `http://127.0.0.1:${p2}`];
    const before = await eventually(
      async () => {
        const pids = new Set<number>();
        for (let i = 0; i < 8; i++) {
          const res = await fetch(`${proxies[i % 2]}/where`, { method: 'POST', body: '[0]' });
          if (res.ok) pids.add(((await res.json()) as { pid: number }).pid);
        }
        return [...pids].sort();
      },
      (p) => p.length === 2,
      60_000,
    );

    // Steady load: two clients per surviving proxy, back to back.
    const outcomes: Outcome[] = [];
    let sending = true;
    const clients = proxies.flatMap((via) =>
      [0, 1].map(async () => {
        while (sending) {
          const sentAtMs = Date.now();
          try {
            const res = await fetch(`${via}/where`, { method: 'POST', body: '[30]' });
            const body = (await res.json()) as { pid?: number };
            outcomes.push({ via, ok: res.ok, pid: body.pid, detail: JSON.stringify(body), sentAtMs, atMs: Date.now() });
          } catch (err) {
            outcomes.push({ via, ok: false, detail: String(err), sentAtMs, atMs: Date.now() });
          }
        }
      }),
    );
    const served = (afterMs: number, via?: string) =>
      outcomes.filter((o) => o.ok && o.atMs > afterMs && (!via || o.via === via)).length;
    await eventually(
      () => Math.min(served(0, proxies[0]), served(0, proxies[1])),
      (n) => n >= 10,
      60_000,
    );

    // kill -9 of the leader.
    const killedAtMs = Date.now();
    h1.child.kill('SIGKILL');
    await h1.exited;
    await eventually(h2.out, (o) => /leading: 1 application/.test(o), 60_000);
    await eventually(agent.out, (o) => o.includes(`joined the head at 127.0.0.1:${c2}`), 60_000);
    const tookOverAtMs = Date.now();
    await eventually(
      () => Math.min(served(tookOverAtMs, proxies[0]), served(tookOverAtMs, proxies[1])),
      (n) => n >= 10,
      120_000,
    );
    expect(h2.out()).toMatch(/node ha-a1 still runs 2 replica\(s\); re-adopting 2/);
    expect(agent.out()).toMatch(/re-adopted by the head/);
    const s2After = await status(`http://127.0.0.1:${p2}`);
    expect(s2After.leader).toBe(true);
    expect(s2After.leaderHead?.cluster).toBe(`127.0.0.1:${c2}`);

    // etcd killed and restarted under load: the heads reconnect and keep serving.
    await etcd.stop();
    await new Promise((r) => setTimeout(r, 1000));
    await etcd.start();
    const etcdBackAtMs = Date.now();
    await eventually(
      () => Math.min(served(etcdBackAtMs, proxies[0]), served(etcdBackAtMs, proxies[1])),
      (n) => n >= 10,
      120_000,
    );
    sending = false;
    await Promise.all(clients);

    // Nothing was lost: every request of the run succeeded, on the same two replica processes.
    const failed = outcomes.filter((o) => !o.ok);
    expect(failed, JSON.stringify(failed.slice(0, 5))).toEqual([]);
    expect([...new Set(outcomes.map((o) => o.pid))].sort()).toEqual(before);
    // Requests in flight at the kill were held (or sent again), then served by the new leader.
    for (const via of proxies)
      expect(outcomes.some((o) => o.via === via && o.sentAtMs <= killedAtMs && o.atMs > killedAtMs)).toBe(true);

    // After the etcd restart the leader still leads and writes: a deploy through it lands in etcd.
    const second = serve(
      [
        'deploy',
        'test/fixtures/apps/ha-hello.ts:app',
        '--name',
        's2',
        '--route-prefix',
        '/s2',
        '--address',
        `127.0.0.1:${c2}`,
      ],
      env,
    );
    expect(await second.exited, `${second.out()}\n--- h2:\n${h2.out().slice(-3000)}`).toBe(0);
    await eventually(
      async () => JSON.parse((await client.get('/flotilla/ha-test/state').string()) ?? '{"apps":[]}'),
      (s: { apps: { name: string }[] }) =>
        s.apps
          .map((a) => a.name)
          .sort()
          .join() === 's,s2',
      60_000,
    );
    expect((await status(`http://127.0.0.1:${p2}`)).leader).toBe(true);
    // The agent's proxy learns the new route at its next poll of the leader.
    await eventually(
      async () => (await fetch(`http://127.0.0.1:${pa}/s2/hello`, { method: 'POST', body: '["ha"]' })).json(),
      (body) => body === 'hello ha',
    );
    client.close();

    h2.child.kill('SIGTERM');
    expect(await h2.exited).toBe(0);
    agent.child.kill('SIGTERM');
    await agent.exited;
  });

  it('a head started against an etcd that is down fails at once, naming the address', async () => {
    const port = await freePort();
    const h = serve(
      ['start', '--head', '--port', '0', '--no-grpc', '--cluster-port', '0', '--state', `etcd://127.0.0.1:${port}`],
      env,
    );
    expect(await h.exited).toBe(1);
    expect(h.out()).toMatch(new RegExp(`cannot reach etcd at 127\\.0\\.0\\.1:${port}`));
    expect(h.out()).toMatch(/ECONNREFUSED/);
  });
});

// Only where etcd is missing: a visible skip that says why (nothing is registered where etcd exists).
if (!etcdBinary()) {
  describe('heads on etcd', () => {
    it.skip(`skipped: ${NO_ETCD_REASON}`, () => {});
  });
}
