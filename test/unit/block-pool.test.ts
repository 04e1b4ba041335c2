import { describe, expect, it } from 'vitest';
import { BlockPool } from '../../packages/engine/src/block-pool.js';

const tokens = (n: number, base = 0) => Int32Array.from({ length: n }, (_, i) => base + i);

describe('BlockPool', () => {
  it('hands out every block once, then -1, and takes them back', () => {
    const pool = new BlockPool(4, 2);
    const got = [pool.allocate(), pool.allocate(), pool.allocate(), pool.allocate()];
    expect(new Set(got).size).toBe(4);
    expect(pool.allocate()).toBe(-1);
    expect(pool.numFreeBlocks).toBe(0);
    expect(pool.usage).toBe(1);
    for (const b of got) pool.release(b);
    expect(pool.numFreeBlocks).toBe(4);
    expect(pool.usage).toBe(0);
  });

  it('counts references and frees at zero', () => {
    const pool = new BlockPool(2, 2);
    const b = pool.allocate();
    pool.incRef(b);
    expect(pool.refCount(b)).toBe(2);
    pool.release(b);
    expect(pool.numFreeBlocks).toBe(1);
    pool.release(b);
    expect(pool.refCount(b)).toBe(0);
    expect(pool.numFreeBlocks).toBe(2);
    expect(() => pool.release(b)).toThrow(/assertion/);
  });

  it('finds a registered block only when hash, parent hash and tokens all match', () => {
    const pool = new BlockPool(4, 4);
    const t = tokens(8);
    const b = pool.allocate();
    expect(pool.register(b, 42, 7, t, 4)).toBe(true);
    expect(pool.lookup(42, 7, t, 4)).toBe(b);
    expect(pool.lookup(42, 8, t, 4)).toBe(-1); // other parent
    expect(pool.lookup(42, 7, t, 0)).toBe(-1); // same hash, other tokens: a collision, ruled out
    expect(pool.lookup(43, 7, t, 4)).toBe(-1);
    const other = pool.allocate();
    expect(pool.register(other, 42, 7, t, 4)).toBe(false); // the first copy stays
    expect(pool.numCachedBlocks).toBe(1);
  });

  it('keeps cached blocks after release and evicts least recently freed first', () => {
    const pool = new BlockPool(3, 1);
    const [a, b, c] = [pool.allocate(), pool.allocate(), pool.allocate()];
    const t = tokens(3);
    pool.register(a, 1, 0, t, 0);
    pool.register(b, 2, 0, t, 1);
    pool.release(b);
    pool.release(a); // b freed before a: b is older
    pool.release(c); // uncached: to the head, handed out first
    expect(pool.freeQueue()).toEqual([c, b, a]);
    expect(pool.allocate()).toBe(c);
    expect(pool.numEvictions).toBe(0);
    expect(pool.allocate()).toBe(b);
    expect(pool.numEvictions).toBe(1);
    expect(pool.lookup(2, 0, t, 1)).toBe(-1);
    expect(pool.lookup(1, 0, t, 0)).toBe(a);
  });

  it('a hit on a free cached block takes it out of the free queue', () => {
    const pool = new BlockPool(2, 1);
    const a = pool.allocate();
    pool.register(a, 9, 0, tokens(1), 0);
    pool.release(a);
    expect(pool.numFreeBlocks).toBe(2);
    pool.incRef(pool.lookup(9, 0, tokens(1), 0));
    expect(pool.numFreeBlocks).toBe(1);
    expect(pool.refCount(a)).toBe(1);
    expect(pool.allocate()).not.toBe(a);
  });
});
