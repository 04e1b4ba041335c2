/** `--state` parsing (controller/store/state-url.ts) and the leader line of `serve status` (status-table.ts). */
import { describe, expect, it } from 'vitest';
import { describeStateLocation, parseStateLocation } from '../../packages/core/src/controller/store/state-url.js';
import { renderStatus } from '../../packages/core/src/cli/status-table.js';
import { DeploymentConfigError } from '../../packages/core/src/errors.js';

describe('parseStateLocation', () => {
  it('keeps the checkpoint file when no URL is given', () => {
    expect(parseStateLocation(undefined)).toEqual({ kind: 'file' });
    expect(parseStateLocation('/tmp/c.json')).toEqual({ kind: 'file', path: '/tmp/c.json' });
  });

  it('reads etcd members, the cluster name and the lease TTL', () => {
    expect(parseStateLocation('etcd://10.0.0.1:2379,10.0.0.2:2379')).toEqual({
      kind: 'etcd',
      hosts: ['10.0.0.1:2379', '10.0.0.2:2379'],
      prefix: '/flotilla/default/',
      leaseTtlS: 2,
    });
    const loc = parseStateLocation('etcd://etcd.local:2379/prod/eu?ttl=4');
    expect(loc).toEqual({ kind: 'etcd', hosts: ['etcd.local:2379'], prefix: '/flotilla/prod/eu/', leaseTtlS: 4 });
    expect(describeStateLocation(loc)).toBe('etcd://etcd.local:2379/prod/eu');
  });

  it('refuses what it cannot use, saying what is wrong', () => {
    const bad: [string, RegExp][] = [
      ['redis://h:6379', /only etcd:\/\//],
      ['etcd://h', /'h' is not HOST:PORT/],
      ['etcd://h:0', /'h:0' is not HOST:PORT/],
      ['etcd://h:2379/a b', /cluster name/],
      ['etcd://h:2379?ttl=0', /ttl must be whole seconds/],
      ['etcd://h:2379?ttl=1.5', /ttl must be whole seconds/],
      ['etcd://h:2379?lease=3', /unknown parameter 'lease'/],
    ];
    for (const [value, message] of bad) {
      expect(() => parseStateLocation(value), value).toThrow(DeploymentConfigError);
      expect(() => parseStateLocation(value), value).toThrow(message);
    }
  });
});

describe('serve status: leader line', () => {
  const base = { startedAtMs: 0, applications: [] };
  it('says whether this head leads, and which head does', () => {
    expect(renderStatus({ ...base }, 0)).not.toMatch(/leader|standby/);
    expect(renderStatus({ ...base, leader: true, state: 'etcd://e:2379/default' }, 0)).toMatch(
      /^leader: this head \(state etcd:\/\/e:2379\/default\)$/m,
    );
    expect(
      renderStatus(
        {
          ...base,
          leader: false,
          leaderHead: { id: 'h1:42', cluster: '10.0.0.1:9100' },
          state: 'etcd://e:2379/default',
        },
        0,
      ),
    ).toMatch(/^standby: the leader is h1:42 at 10\.0\.0\.1:9100 \(state etcd:\/\/e:2379\/default\)$/m);
    expect(renderStatus({ ...base, leader: false }, 0)).toMatch(/^standby: no leader elected yet$/m);
  });
});
