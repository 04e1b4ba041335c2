/** AdapterSlots: the residency policy of LoRA adapters (LRU among unpinned slots; pinned ones never move). */
import { describe, expect, it } from 'vitest';
import { AdapterSlots } from '../../packages/engine/src/lora/adapter-slots.js';

describe('AdapterSlots', () => {
  it('fills free slots first, then evicts the least recently used unpinned adapter', () => {
    const s = new AdapterSlots(2);
    expect(s.place('a')).toEqual({ slot: 0, load: true });
    expect(s.place('b')).toEqual({ slot: 1, load: true });
    s.unpin(0);
    s.unpin(1);
    expect(s.place('a')).toEqual({ slot: 0, load: false }); // resident: a hit, and now the most recent
    s.unpin(0);
    expect(s.place('c')).toEqual({ slot: 1, load: true, evicted: 'b' });
    expect(s.slotOf('b')).toBeUndefined();
    expect(s.resident()).toEqual(['a', 'c']);
  });

  it('never evicts a pinned adapter, and says so when every slot is pinned', () => {
    const s = new AdapterSlots(2);
    s.place('a'); // pinned (a running request)
    s.place('b');
    s.unpin(1);
    expect(s.place('c')).toEqual({ slot: 1, load: true, evicted: 'b' });
    expect(s.place('d')).toBeNull(); // a and c pinned
    s.unpin(0);
    expect(s.place('d')).toEqual({ slot: 0, load: true, evicted: 'a' });
    expect(s.pinCount(0)).toBe(1);
  });

  it('clear frees the slot; unpinning more than pinned is a bug', () => {
    const s = new AdapterSlots(1);
    s.place('a');
    s.unpin(0);
    expect(s.clear('a')).toBe(0);
    expect(s.place('b')).toEqual({ slot: 0, load: true });
    s.unpin(0);
    expect(() => s.unpin(0)).toThrow(/assertion/);
  });
});
