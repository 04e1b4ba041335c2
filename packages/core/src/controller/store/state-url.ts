/**
 * Where a head keeps its controller state (pure parsing, no I/O):
 *
 *   (none) or a file path       the embedded default: a checkpoint file on this machine (one head)
 *   etcd://H:P[,H:P...][/NAME][?ttl=S]
 *                               etcd (v3 API): the state under /flotilla/NAME/ (default NAME: 'default'),
 *                               leaders elected with a lease of S seconds (default 2; a killed leader is
 *                               replaced about S seconds later)
 */
import { DeploymentConfigError } from '../../errors.js';

export type StateLocation = { kind: 'file'; path?: string } | EtcdLocation;

export interface EtcdLocation {
  kind: 'etcd';
  /** 'host:port' of each etcd member, as given. */
  hosts: string[];
  /** Key prefix of this cluster's state and election, ending in '/'. */
  prefix: string;
  /** The leader's lease, in whole seconds (etcd's unit). */
  leaseTtlS: number;
}

export const DEFAULT_LEASE_TTL_S = 2;

/** Parses `--state` / the config's `state`; throws DeploymentConfigError naming what is wrong. */
export function parseStateLocation(value: string | undefined): StateLocation {
  if (value === undefined || value === '') return { kind: 'file' };
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return { kind: 'file', path: value };
  const match = /^etcd:\/\/([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/i.exec(value);
  if (!match) {
    throw new DeploymentConfigError(
      `state '${value}': only etcd://HOST:PORT[,HOST:PORT...][/NAME] or a checkpoint file path is supported`,
    );
  }
  const hosts = match[1]!.split(',').map((h) => h.trim());
  for (const h of hosts) {
    const hp = /^(\[[0-9a-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/i.exec(h);
    if (!hp || Number(hp[2]) < 1 || Number(hp[2]) > 65535) {
      throw new DeploymentConfigError(`state '${value}': '${h}' is not HOST:PORT of an etcd member`);
    }
  }
  const name = (match[2] ?? '').replace(/^\/+|\/+$/g, '') || 'default';
  if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(name)) {
    throw new DeploymentConfigError(
      `state '${value}': the cluster name '${name}' may hold letters, digits, . _ - and /`,
    );
  }
  let leaseTtlS = DEFAULT_LEASE_TTL_S;
  for (const [k, v] of new URLSearchParams(match[3] ?? '')) {
    if (k !== 'ttl') throw new DeploymentConfigError(`state '${value}': unknown parameter '${k}' (known: ttl)`);
    leaseTtlS = Number(v);
    if (!Number.isInteger(leaseTtlS) || leaseTtlS < 1 || leaseTtlS > 60) {
      throw new DeploymentConfigError(`state '${value}': ttl must be whole seconds from 1 to 60, got '${v}'`);
    }
  }
  return { kind: 'etcd', hosts, prefix: `/flotilla/${name}/`, leaseTtlS };
}

/** The location as a user wrote it, without credentials (there are none in these URLs), for logs and status. */
export function describeStateLocation(loc: StateLocation): string {
  if (loc.kind === 'file') return loc.path ? `file ${loc.path}` : 'file (default checkpoint)';
  return `etcd://${loc.hosts.join(',')}${loc.prefix.replace(/^\/flotilla/, '').replace(/\/$/, '')}`;
}
