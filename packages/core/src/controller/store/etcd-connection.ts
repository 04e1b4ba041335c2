/**
 * One etcd client per head, shared by its store and its election (etcd3, the v3 gRPC API). Connecting
 * checks that etcd answers, so that a head started against an etcd that is down fails at once with the
 * address, rather than waiting as a standby that can never be elected.
 */
// cockatiel is etcd3's own fault-handling library (the same version), used here only to configure it.
import { ConsecutiveBreaker, circuitBreaker, handleWhen } from 'cockatiel';
import { Etcd3, isRecoverableError } from 'etcd3';
import { ClusterError } from '../../errors.js';
import type { EtcdLocation } from './state-url.js';

export async function connectEtcd(loc: EtcdLocation, timeoutMs = 5000): Promise<Etcd3> {
  const client = new Etcd3({
    hosts: loc.hosts,
    dialTimeout: Math.min(timeoutMs, 3000),
    // etcd3's default pauses a member for 5 s after 3 failed calls: longer than a leader's lease may go
    // unrenewed (2 x TTL), so an etcd restart would cost the leadership. Try again after 250 ms instead.
    faultHandling: {
      host: () =>
        circuitBreaker(handleWhen(isRecoverableError), {
          halfOpenAfter: 250,
          breaker: new ConsecutiveBreaker(3),
        }),
    },
  });
  try {
    await client
      .get(`${loc.prefix}state`)
      .options({ deadline: Date.now() + timeoutMs })
      .string();
    return client;
  } catch (err) {
    client.close();
    throw new ClusterError(
      `cannot reach etcd at ${loc.hosts.join(',')} (${etcdCause(err)}); ` +
        'start etcd there (Debian: apt-get install etcd-server) or fix --state',
      { store: `etcd://${loc.hosts.join(',')}` },
    );
  }
}

/** The gist of an etcd3/gRPC error ("connect ECONNREFUSED 127.0.0.1:2379" rather than the whole chain). */
export function etcdCause(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const refused = /connect (E[A-Z]+ [^\s.]+(?:\.[^\s.]+)*(?::\d+)?)/.exec(message);
  if (refused) return refused[1]!.replace(/\.$/, '');
  return message.replace(/\s*Resolution note:.*$/s, '').slice(0, 200);
}
