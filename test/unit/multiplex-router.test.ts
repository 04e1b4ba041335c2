import { describe, expect, it } from 'vitest';
import { chooseMultiplexed, hasRoom, type MultiplexLoad } from '../../packages/core/src/router/multiplex-router.js';
import { ModelView, UNREPORTED_LIMIT } from '../../packages/core/src/router/model-view.js';

/** Replicas with in-flight counts and held models (capacity 2 unless given). */
function replicas(spec: { inFlight: number; models?: string[]; capacity?: number }[], max = 4): MultiplexLoad[] {
  return spec.map((s, i) => {
    const view = new ModelView();
    if (s.models) view.report(s.models, s.capacity ?? 2, 0);
    return { id: `r${i}`, inFlight: s.inFlight, maxOngoing: max, ...(s.models ? { models: view } : {}) };
  });
}

describe('multiplexed routing (pure policy)', () => {
  it('sends a model to the replica that holds it, whatever the random draws', () => {
    const rs = replicas([
      { inFlight: 0, models: ['x'] },
      { inFlight: 0, models: ['y'] },
      { inFlight: 0, models: ['z'] },
    ]);
    for (let i = 0; i < 50; i++) expect(chooseMultiplexed(rs, 'y', 0)).toBe('r1');
  });

  it('picks the less loaded of two holders', () => {
    const rs = replicas([
      { inFlight: 3, models: ['x'] },
      { inFlight: 1, models: ['x'] },
      { inFlight: 0, models: [] },
    ]);
    expect(chooseMultiplexed(rs, 'x', 0)).toBe('r1');
  });

  it('loads a hot model on a second replica when its holder is much busier or full', () => {
    const busy = replicas(
      [
        { inFlight: 6, models: ['x'] },
        { inFlight: 0, models: [] },
      ],
      10,
    );
    expect(chooseMultiplexed(busy, 'x', 0, { maxImbalance: 4 })).toBe('r1');
    expect(chooseMultiplexed(busy, 'x', 0, { maxImbalance: 8 })).toBe('r0');
    const full = replicas([
      { inFlight: 4, models: ['x'] },
      { inFlight: 3, models: ['y', 'z'] },
    ]);
    expect(chooseMultiplexed(full, 'x', 0)).toBe('r1');
  });

  it('on a miss prefers a replica with room for one more model over a less loaded full one', () => {
    const rs = replicas([
      { inFlight: 0, models: ['a', 'b'] },
      { inFlight: 2, models: ['c'] },
      { inFlight: 0, models: ['d', 'e'] },
    ]);
    for (let i = 0; i < 20; i++) expect(chooseMultiplexed(rs, 'new', 0)).toBe('r1');
  });

  it('on a miss spreads new models over the replicas holding the fewest, unless that one is much busier', () => {
    const rs = replicas([
      { inFlight: 0, models: ['a'], capacity: 4 },
      { inFlight: 1, models: [], capacity: 4 },
      { inFlight: 0, models: ['b', 'c'], capacity: 4 },
    ]);
    for (let i = 0; i < 20; i++) expect(chooseMultiplexed(rs, 'new', 0)).toBe('r1');
    rs[1]!.inFlight = 6;
    const rs2 = rs.map((r) => ({ ...r, maxOngoing: 10 }));
    for (let i = 0; i < 20; i++) expect(chooseMultiplexed(rs2, 'new', 0)).not.toBe('r1');
  });

  it('on a miss with every replica full of models, falls back to load among all free replicas', () => {
    const rs = replicas([
      { inFlight: 3, models: ['a', 'b'] },
      { inFlight: 0, models: ['c', 'd'] },
    ]);
    expect(chooseMultiplexed(rs, 'new', 0)).toBe('r1');
  });

  it('null when every replica is at maxOngoingRequests or blocked', () => {
    const rs = replicas([{ inFlight: 4, models: ['x'] }, { inFlight: 0 }]);
    rs[1]!.blockedUntilMs = 100;
    expect(chooseMultiplexed(rs, 'x', 50)).toBeNull();
    expect(chooseMultiplexed(rs, 'x', 150)).toBe('r1');
  });

  it('nothing known about a replica counts as room', () => {
    expect(hasRoom(undefined)).toBe(true);
    expect(hasRoom(new ModelView())).toBe(true);
  });
});

describe('ModelView (what a caller believes a replica holds)', () => {
  it('learns an id at once when the caller routes it, as an LRU of the reported capacity', () => {
    const v = new ModelView();
    v.report(['a', 'b'], 3, 0);
    v.routed('c', 10);
    expect(v.ids()).toEqual(['c', 'a', 'b']);
    v.routed('b', 20);
    v.routed('d', 30);
    expect(v.ids()).toEqual(['d', 'b', 'c']);
    expect(v.has('a')).toBe(false);
  });

  it('a report replaces the view but keeps ids routed within the grace period that it does not show yet', () => {
    const v = new ModelView(1000);
    v.report(['a'], 2, 0);
    v.routed('b', 500);
    v.report(['a'], 2, 1200); // taken before b's load: b stays
    expect(v.ids()).toEqual(['b', 'a']);
    v.report(['c'], 2, 1600); // b's grace is over: the replica is the truth again
    expect(v.ids()).toEqual(['c']);
  });

  it('without a known capacity keeps what it routed, up to a bound (callers may name any id)', () => {
    const v = new ModelView(1000);
    for (const id of ['a', 'b', 'c', 'd']) v.routed(id, 0);
    expect(v.size).toBe(4);
    expect(v.capacity).toBeUndefined();
    for (let i = 0; i < 10 * UNREPORTED_LIMIT; i++) v.routed(`junk-${i}`, 2000 + i);
    expect(v.size).toBe(UNREPORTED_LIMIT);
    expect(v.ids()[0]).toBe(`junk-${10 * UNREPORTED_LIMIT - 1}`);
    // The routed-at log is pruned too: a report keeps at most the ids routed within the grace period.
    v.report([], 4, 2000 + 10 * UNREPORTED_LIMIT);
    expect(v.size).toBe(4);
  });
});
