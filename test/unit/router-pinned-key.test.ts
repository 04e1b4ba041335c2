import { describe, expect, it } from 'vitest';
import { choosePrefixAware, pinnedReplicaKey } from '../../packages/core/src/router/prefix-aware-router.js';
import type { ReplicaLoad } from '../../packages/core/src/router/pow2-router.js';

const replicas = (loads: number[], max = 4): ReplicaLoad[] =>
  loads.map((inFlight, i) => ({ id: `r${i}`, inFlight, maxOngoing: max }));

describe('pinned routing keys', () => {
  it('send every call to the named replica while it is free, however busy it is next to the others', () => {
    const rs = replicas([3, 0, 0, 0]);
    for (let i = 0; i < 50; i++) expect(choosePrefixAware(rs, pinnedReplicaKey('r0'), 0)).toBe('r0');
    for (const id of ['r1', 'r2', 'r3']) expect(choosePrefixAware(rs, pinnedReplicaKey(id), 0)).toBe(id);
  });

  it('fall back to power of two choices when the replica is full, blocked or unknown', () => {
    const full = replicas([4, 0]);
    for (let i = 0; i < 20; i++) expect(choosePrefixAware(full, pinnedReplicaKey('r0'), 0)).toBe('r1');
    const blocked = replicas([0, 0]);
    blocked[0]!.blockedUntilMs = 100;
    for (let i = 0; i < 20; i++) expect(choosePrefixAware(blocked, pinnedReplicaKey('r0'), 50)).toBe('r1');
    expect(choosePrefixAware(blocked, pinnedReplicaKey('r0'), 100)).toBe('r0');
    const picks = new Set(
      Array.from({ length: 50 }, () => choosePrefixAware(replicas([0, 0]), pinnedReplicaKey('gone'), 0)),
    );
    expect(picks).toEqual(new Set(['r0', 'r1']));
    expect(choosePrefixAware(replicas([4, 4]), pinnedReplicaKey('r0'), 0)).toBeNull();
  });

  it('cannot be produced by a prompt-derived key', () => {
    expect(pinnedReplicaKey('r1').startsWith('replica')).toBe(false);
    // A key that spells the id without the NUL prefix is hashed like any other key.
    const rs = replicas([0, 0, 0, 0]);
    const hashed = new Set(Array.from({ length: 40 }, (_, i) => choosePrefixAware(rs, `replica r1 ${i}`, 0)));
    expect(hashed.size).toBeGreaterThan(1);
  });
});
