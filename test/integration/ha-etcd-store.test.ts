/**
 * The etcd store and election (controller/store/) against a real etcd, in process: the first head leads
 * and writes, a second stands by and watches the state; a standby cannot write; when the leader resigns
 * the standby leads, and a write of the old leader is fenced off.
 */
import { describe, expect, it } from 'vitest';
import { openEtcdState } from '../../packages/core/src/controller/store/open-etcd.js';
import { FencedError } from '../../packages/core/src/controller/store/etcd-store.js';
import { parseStateLocation, type EtcdLocation } from '../../packages/core/src/controller/store/state-url.js';
import type { ControllerCheckpoint } from '../../packages/core/src/controller/checkpoint.js';
import type { LeadershipEvent } from '../../packages/core/src/controller/store/leadership.js';
import { eventually } from '../helpers/eventually.js';
import { etcdBinary, testEtcd } from '../helpers/etcd.js';

const state = (name: string): ControllerCheckpoint => ({
  format: 1,
  savedAtMs: Date.now(),
  pid: process.pid,
  apps: [{ name, routePrefix: '/', deployments: [] }],
});

describe.skipIf(!etcdBinary())('etcd store and election', { timeout: 120_000 }, () => {
  const newEtcd = testEtcd();

  it('one leader writes, a standby watches and cannot write, and leads when the leader resigns', async () => {
    const etcd = await newEtcd();
    const loc = parseStateLocation(`etcd://${etcd.address}/store-test`) as EtcdLocation;
    const a = await openEtcdState(loc);
    const b = await openEtcdState(loc);
    const events: Record<string, LeadershipEvent[]> = { a: [], b: [] };
    a.leadership.on((e) => events.a!.push(e));
    b.leadership.on((e) => events.b!.push(e));
    try {
      await a.leadership.campaign({ id: 'a', cluster: '127.0.0.1:1' });
      await eventually(
        () => a.leadership.isLeader,
        (v) => v,
      );
      await b.leadership.campaign({ id: 'b', cluster: '127.0.0.1:2' });
      await eventually(
        () => b.leadership.leader()?.id,
        (id) => id === 'a',
      );
      expect(b.leadership.isLeader).toBe(false);

      const seen: string[] = [];
      const unwatch = b.store.watch((s) => seen.push(s.apps[0]!.name));
      await new Promise((r) => setTimeout(r, 300));
      await a.store.save(state('one'));
      expect((await b.store.load())?.apps[0]?.name).toBe('one');
      await eventually(
        () => seen,
        (s) => s.includes('one'),
      );
      await expect(b.store.save(state('intruder'))).rejects.toBeInstanceOf(FencedError);

      // The leader steps down: the standby leads at once (no lease to wait out) and may write.
      await a.leadership.resign();
      await eventually(
        () => b.leadership.isLeader,
        (v) => v,
      );
      expect(events.b.some((e) => e.type === 'elected')).toBe(true);
      await b.store.save(state('two'));
      await expect(a.store.save(state('stale'))).rejects.toBeInstanceOf(FencedError);
      // Even a head that still believes it leads (its fence set) cannot write once its election key is gone.
      a.store.setFence(`${loc.prefix}election/heads/0`);
      await expect(a.store.save(state('stale'))).rejects.toThrow(/election key of this head is gone/);
      expect((await a.store.load())?.apps[0]?.name).toBe('two');
      // A clean stop keeps the applications and forgets the replicas.
      await b.store.retire({
        ...state('two'),
        apps: [
          {
            name: 'two',
            routePrefix: '/',
            deployments: [
              {
                name: 'D',
                version: 'v',
                targetReplicas: 1,
                decisions: [],
                replicas: [{ id: 'r', node: 'n', version: 'v', info: {} as never }],
              },
            ],
          },
        ],
      });
      expect((await a.store.load())?.apps[0]?.deployments[0]?.replicas).toEqual([]);
      unwatch();
    } finally {
      await a.close();
      await b.close();
    }
  });
});
