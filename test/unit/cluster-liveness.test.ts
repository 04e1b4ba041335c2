import { describe, expect, it } from 'vitest';
import { NodeLivenessTable, livenessOf, missedHeartbeats } from '../../packages/core/src/cluster/node-liveness.js';

const policy = { intervalMs: 1000, missedLimit: 3 };

describe('node liveness (fake clock)', () => {
  it('counts a heartbeat as missed half an interval after it was due, so jitter never shows', () => {
    expect(missedHeartbeats(0, 1000, policy)).toBe(0);
    expect(missedHeartbeats(0, 1499, policy)).toBe(0);
    expect(missedHeartbeats(0, 1500, policy)).toBe(1);
    expect(missedHeartbeats(0, 3500, policy)).toBe(3);
  });

  it('is ALIVE, then SUSPECT after one missed beat, then DEAD at the limit', () => {
    expect(livenessOf(0, 1200, policy)).toBe('ALIVE');
    expect(livenessOf(0, 1600, policy)).toBe('SUSPECT');
    expect(livenessOf(0, 3400, policy)).toBe('SUSPECT');
    expect(livenessOf(0, 3500, policy)).toBe('DEAD');
  });

  it('sweep returns each dead node once, with the beats it missed, and forgets it', () => {
    const table = new NodeLivenessTable(policy);
    table.register('a', 0);
    table.register('b', 0);
    for (let t = 1000; t <= 5000; t += 1000) table.beat('b', t);
    expect(table.sweep(3000)).toEqual([]);
    expect(table.state('a', 3000)).toBe('SUSPECT');
    expect(table.sweep(3600)).toEqual([{ nodeId: 'a', missed: 3 }]);
    expect(table.sweep(4000)).toEqual([]);
    expect(table.state('a', 4000)).toBeUndefined();
    // A dead node's late heartbeat is refused: it has to register again.
    expect(table.beat('a', 4100)).toBe(false);
    expect(table.state('b', 5200)).toBe('ALIVE');
  });

  it('heartbeats keep a node alive indefinitely; an out-of-order one never moves time back', () => {
    const table = new NodeLivenessTable(policy);
    table.register('n', 0);
    for (let t = 900; t < 60_000; t += 900) {
      expect(table.beat('n', t)).toBe(true);
      expect(table.sweep(t + 500)).toEqual([]);
    }
    table.beat('n', 70_000);
    table.beat('n', 65_000);
    expect(table.silenceMs('n', 70_100)).toBe(100);
  });

  it('a shorter interval and limit declare death sooner', () => {
    const fast = new NodeLivenessTable({ intervalMs: 200, missedLimit: 2 });
    fast.register('n', 0);
    expect(fast.sweep(400)).toEqual([]);
    expect(fast.sweep(500)).toEqual([{ nodeId: 'n', missed: 2 }]);
  });
});
