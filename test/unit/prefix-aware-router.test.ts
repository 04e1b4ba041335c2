import { describe, expect, it } from 'vitest';
import { choosePrefixAware, preferredReplica } from '../../packages/core/src/router/prefix-aware-router.js';
import type { ReplicaLoad } from '../../packages/core/src/router/pow2-router.js';

const replicas = (loads: number[], max = 10): ReplicaLoad[] =>
  loads.map((inFlight, i) => ({ id: `r${i}`, inFlight, maxOngoing: max }));

describe('prefix-aware routing', () => {
  it('sends requests with the same key to the same replica', () => {
    const rs = replicas([0, 0, 0, 0]);
    const picks = new Set(Array.from({ length: 20 }, () => choosePrefixAware(rs, 'You are a helpful assistant.', 0)));
    expect(picks.size).toBe(1);
  });

  it('spreads different prefixes over the replicas', () => {
    const rs = replicas([0, 0, 0, 0]);
    const used = new Set(Array.from({ length: 200 }, (_, i) => preferredReplica(rs, `prompt number ${i}`)));
    expect(used.size).toBe(4);
  });

  it('moves only the keys of a removed replica (rendezvous hashing)', () => {
    const all = replicas([0, 0, 0, 0]);
    const less = all.filter((r) => r.id !== 'r2');
    for (let i = 0; i < 200; i++) {
      const before = preferredReplica(all, `k${i}`);
      if (before !== 'r2') expect(preferredReplica(less, `k${i}`)).toBe(before);
    }
  });

  it('falls back to power of two choices when the preferred replica is busy, full or blocked, or without a key', () => {
    const key = 'shared prefix';
    const pref = preferredReplica(replicas([0, 0, 0]), key)!;
    const idx = Number(pref.slice(1));
    const busy = replicas([0, 0, 0]);
    busy[idx]!.inFlight = 6; // 6 above the least loaded > maxImbalance 4
    for (let i = 0; i < 20; i++) expect(choosePrefixAware(busy, key, 0, { maxImbalance: 4 })).not.toBe(pref);
    busy[idx]!.inFlight = 4;
    expect(choosePrefixAware(busy, key, 0, { maxImbalance: 4 })).toBe(pref);
    const blocked = replicas([0, 0, 0]);
    blocked[idx]!.blockedUntilMs = 100;
    expect(choosePrefixAware(blocked, key, 50)).not.toBe(pref);
    expect(choosePrefixAware(replicas([10, 10, 10]), key, 0)).toBeNull();
    expect(choosePrefixAware(replicas([0, 5]), undefined, 0, {}, () => 0)).toBe('r0');
  });
});
