import { describe, expect, it } from 'vitest';
import { chooseReplica, retryAfterS, type ReplicaLoad } from '../../packages/core/src/router/pow2-router.js';

/** A deterministic random source cycling through the given values. */
const seq = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length]!;
};
const load = (id: string, inFlight: number, maxOngoing = 5, blockedUntilMs?: number): ReplicaLoad => ({
  id,
  inFlight,
  maxOngoing,
  blockedUntilMs,
});

describe('chooseReplica (power of two choices)', () => {
  it('returns null with no replicas or when all are at maxOngoingRequests', () => {
    expect(chooseReplica([], 0)).toBeNull();
    expect(chooseReplica([load('a', 5), load('b', 5)], 0)).toBeNull();
  });

  it('picks the only replica with a free slot', () => {
    expect(chooseReplica([load('a', 5), load('b', 2), load('c', 5)], 0)).toBe('b');
  });

  it('of the two sampled replicas, picks the one with fewer in flight', () => {
    const replicas = [load('a', 4), load('b', 1), load('c', 3)];
    // samples index 0 ('a') and then index 1 of the remaining [b, c] → c: c has fewer than a
    expect(chooseReplica(replicas, 0, seq(0, 0.6))).toBe('c');
    // samples a and b → b
    expect(chooseReplica(replicas, 0, seq(0, 0))).toBe('b');
  });

  it('never samples the same replica twice', () => {
    const replicas = [load('a', 0), load('b', 3)];
    for (const r of [0, 0.3, 0.99]) expect(chooseReplica(replicas, 0, seq(0.6, r))).toBe('a');
  });

  it('skips replicas blocked after a rejection until the block expires', () => {
    const replicas = [load('a', 0, 5, 1000), load('b', 4)];
    expect(chooseReplica(replicas, 999)).toBe('b');
    expect(chooseReplica(replicas, 1000, seq(0, 0))).toBe('a');
  });

  it('spreads load: over many picks the less loaded replica wins most often', () => {
    const replicas = [load('a', 0), load('b', 2), load('c', 4)];
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
    let x = 0.123;
    const rand = () => (x = (x * 9301 + 0.49297) % 1);
    for (let i = 0; i < 3000; i++) counts[chooseReplica(replicas, 0, rand)!]!++;
    expect(counts.a).toBeGreaterThan(counts.b!);
    expect(counts.b).toBeGreaterThan(counts.c!);
    expect(counts.c).toBe(0);
  });
});

describe('retryAfterS', () => {
  it('is at least one second and grows with the queue over the capacity', () => {
    expect(retryAfterS(0, 5)).toBe(1);
    expect(retryAfterS(10, 5)).toBe(2);
    expect(retryAfterS(10, 0)).toBe(10);
  });
});
