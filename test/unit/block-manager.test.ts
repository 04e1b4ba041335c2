import { describe, expect, it } from 'vitest';
import { BlockManager, hashBlock } from '../../packages/engine/src/block-manager.js';
import { BlockPool } from '../../packages/engine/src/block-pool.js';
import { makeSeq } from '../helpers/engine-fakes.js';

function admit(bm: BlockManager, seq: ReturnType<typeof makeSeq>): number {
  const hit = bm.lookupPrefix(seq);
  expect(bm.allocate(seq, seq.numTokens - hit * bm.blockSize, hit)).toBe(true);
  bm.recordAdmission(seq, hit);
  seq.status = 'running';
  return hit;
}

/** Pretends the step ran all scheduled tokens. */
function compute(bm: BlockManager, seq: ReturnType<typeof makeSeq>): void {
  seq.numComputedTokens = seq.numTokens;
  bm.cacheFullBlocks(seq);
}

describe('BlockManager', () => {
  it('allocates ceil(tokens / blockSize) blocks and grows one block per blockSize tokens', () => {
    const bm = new BlockManager(new BlockPool(10, 4), true);
    const seq = makeSeq(6, {}, { blockSize: 4 });
    admit(bm, seq);
    expect(seq.numBlocks).toBe(2);
    compute(bm, seq);
    seq.appendToken(5);
    seq.appendToken(6); // 8 tokens: still 2 blocks
    expect(bm.allocate(seq, 2)).toBe(true);
    expect(seq.numBlocks).toBe(2);
    seq.numComputedTokens = 8;
    seq.appendToken(7);
    expect(bm.allocate(seq, 1)).toBe(true);
    expect(seq.numBlocks).toBe(3);
  });

  it('hits full blocks of an identical prefix, never the last token, and misses on a different one', () => {
    const bm = new BlockManager(new BlockPool(20, 4), true);
    const prompt = Array.from({ length: 12 }, (_, i) => i + 10);
    const a = makeSeq(prompt, {}, { blockSize: 4 });
    expect(admit(bm, a)).toBe(0);
    compute(bm, a);
    const b = makeSeq(prompt, {}, { blockSize: 4 });
    expect(admit(bm, b)).toBe(2); // 12 tokens: blocks 0,1 hit, block 2 recomputed for the last token
    expect(b.numComputedTokens).toBe(8);
    expect([b.blockTable[0], b.blockTable[1]]).toEqual([a.blockTable[0], a.blockTable[1]]);
    expect(bm.pool.refCount(a.blockTable[0]!)).toBe(2);
    const c = makeSeq([...prompt.slice(0, 4), 99, ...prompt.slice(5), 1, 2], {}, { blockSize: 4 });
    expect(admit(bm, c)).toBe(1); // diverges inside block 1
    const d = makeSeq([7, ...prompt], {}, { blockSize: 4 }); // shifted: chain differs from the root
    expect(admit(bm, d)).toBe(0);
    expect(bm.stats.prefixHitTokens).toBe(12);
  });

  it('counts free cached hits against the free blocks when checking room', () => {
    const bm = new BlockManager(new BlockPool(3, 4), true);
    const a = makeSeq(9, {}, { blockSize: 4 });
    admit(bm, a);
    compute(bm, a);
    bm.free(a); // 3 free blocks, 2 of them cached
    const b = makeSeq(9, {}, { blockSize: 4 });
    const hit = bm.lookupPrefix(b);
    expect(hit).toBe(2);
    expect(bm.canAllocate(b, 1, hit)).toBe(true); // 2 hits + 1 fresh = 3
    expect(bm.canAllocate(b, 5, hit)).toBe(false); // would need 4
  });

  it('frees in reverse order so the last blocks of a request are evicted first', () => {
    const pool = new BlockPool(4, 2);
    const bm = new BlockManager(pool, true);
    const a = makeSeq(8, {}, { blockSize: 2 }); // exactly 4 full blocks
    admit(bm, a);
    compute(bm, a);
    const ids = Array.from(a.blockTable.subarray(0, 4));
    bm.free(a);
    expect(pool.freeQueue()).toEqual([...ids].reverse());
    const b = makeSeq([1, 2], {}, { blockSize: 2 });
    admit(bm, b);
    expect(b.blockTable[0]).toBe(ids[3]); // the request's last block went first
    const again = makeSeq(8, {}, { blockSize: 2 });
    expect(bm.lookupPrefix(again)).toBe(3); // first three blocks still cached
  });

  it("shares a running parent's full prompt blocks with a sibling sample, even without prefix caching", () => {
    const bm = new BlockManager(new BlockPool(10, 4), false);
    const parent = makeSeq(10, { n: 2 }, { blockSize: 4 });
    admit(bm, parent);
    compute(bm, parent);
    const child = makeSeq(10, { n: 2 }, { blockSize: 4, parent, index: 1 });
    expect(admit(bm, child)).toBe(2);
    expect(child.blockTable[2]).not.toBe(parent.blockTable[2]); // the partial block is its own
    expect(bm.pool.refCount(parent.blockTable[0]!)).toBe(2);
    bm.free(parent);
    bm.free(child);
    expect(bm.pool.numFreeBlocks).toBe(10);
  });

  it('hashes are chained and deterministic', () => {
    const t = Int32Array.from([1, 2, 3, 4]);
    expect(hashBlock(0, t, 0, 4)).toBe(hashBlock(0, t, 0, 4));
    expect(hashBlock(0, t, 0, 4)).not.toBe(hashBlock(1, t, 0, 4));
    expect(hashBlock(0, t, 0, 4)).not.toBe(hashBlock(0, Int32Array.from([1, 2, 4, 3]), 0, 4));
    expect(Number.isSafeInteger(hashBlock(2 ** 52, t, 0, 4))).toBe(true);
  });
});
