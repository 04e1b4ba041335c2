/**
 * Which KV blocks each sequence holds: allocation as its computed tokens grow, prefix-cache hits at
 * admission, sharing of a parent's prompt blocks (n > 1), and release in reverse order.
 *
 * Only full, computed blocks are ever shared (between samples, or through the prefix cache), and a
 * full block is never written again, so no copy-on-write is needed: a sequence that shares a prefix
 * writes its partly filled last block into a block of its own, recomputing those few tokens.
 */
import type { BlockPool } from './block-pool.js';
import type { Sequence } from './sequence.js';

/** The root of a chain is the sequence's cacheRoot: 0 for the base model, one per LoRA adapter registration. */
const TWO_32 = 4294967296;

export interface BlockManagerStats {
  /** Prompt tokens looked up in the prefix cache at admission. */
  prefixQueryTokens: number;
  /** Of those, tokens found (cached or shared from a sibling sample). */
  prefixHitTokens: number;
}

export class BlockManager {
  readonly pool: BlockPool;
  readonly blockSize: number;
  readonly enablePrefixCaching: boolean;
  readonly stats: BlockManagerStats = { prefixQueryTokens: 0, prefixHitTokens: 0 };

  constructor(pool: BlockPool, enablePrefixCaching: boolean) {
    this.pool = pool;
    this.blockSize = pool.blockSize;
    this.enablePrefixCaching = enablePrefixCaching;
  }

  /** Blocks needed to hold `numTokens` tokens. */
  blocksFor(numTokens: number): number {
    return Math.ceil(numTokens / this.blockSize);
  }

  /**
   * At admission: finds how many leading full blocks of `seq` are already computed — shared from its
   * running parent sample, then found in the prefix cache — and writes their ids into seq.blockTable
   * without taking them (allocate() does). At most numTokens - 1 tokens hit: the last one must run to
   * be sampled from. Returns the number of hit blocks.
   */
  lookupPrefix(seq: Sequence): number {
    const bs = this.blockSize;
    const maxHit = Math.floor((seq.numTokens - 1) / bs);
    let k = 0;
    const parent = seq.parent;
    if (parent && parent.status === 'running') {
      k = Math.min(maxHit, Math.floor(Math.min(parent.numComputedTokens, seq.promptLen) / bs), parent.numBlocks);
      for (let i = 0; i < k; i++) seq.blockTable[i] = parent.blockTable[i]!;
    }
    if (this.enablePrefixCaching) {
      this.hashFullBlocks(seq, maxHit);
      for (; k < maxHit; k++) {
        const parentHash = k === 0 ? seq.cacheRoot : seq.blockHashes[k - 1]!;
        const b = this.pool.lookup(seq.blockHashes[k]!, parentHash, seq.tokenIds, k * bs);
        if (b < 0) break;
        seq.blockTable[k] = b;
      }
    }
    return k;
  }

  /** Counts an admission's lookup in the hit-rate statistics (once per admission, not per attempt). */
  recordAdmission(seq: Sequence, numHitBlocks: number): void {
    this.stats.prefixQueryTokens += seq.numTokens;
    this.stats.prefixHitTokens += numHitBlocks * this.blockSize;
  }

  /**
   * Whether `numNewTokens` more tokens of `seq` fit: its next tokens after what is computed (or after
   * `numHitBlocks` blocks found by lookupPrefix, at admission).
   */
  canAllocate(seq: Sequence, numNewTokens: number, numHitBlocks = 0): boolean {
    return this.blocksNeeded(seq, numNewTokens, numHitBlocks) <= this.pool.numFreeBlocks;
  }

  /**
   * Takes the hit blocks (one reference each) and enough fresh blocks for `numNewTokens` more tokens.
   * Returns false, having taken nothing, when they do not fit.
   */
  allocate(seq: Sequence, numNewTokens: number, numHitBlocks = 0): boolean {
    if (!this.canAllocate(seq, numNewTokens, numHitBlocks)) return false;
    if (numHitBlocks > 0) {
      if (seq.numBlocks !== 0) throw new Error(`assertion: prefix hit for sequence ${seq.seqId} that holds blocks`);
      for (let i = 0; i < numHitBlocks; i++) this.pool.incRef(seq.blockTable[i]!);
      seq.numBlocks = numHitBlocks;
      seq.numComputedTokens = numHitBlocks * this.blockSize;
      seq.numRegisteredBlocks = numHitBlocks;
    }
    const target = this.blocksFor(seq.numComputedTokens + numNewTokens);
    while (seq.numBlocks < target) {
      const b = this.pool.allocate();
      if (b < 0) throw new Error('assertion: pool ran dry after canAllocate');
      seq.blockTable[seq.numBlocks++] = b;
    }
    return true;
  }

  /**
   * After a step: offers blocks that became full and computed to the prefix cache. Cost is one hash
   * per 16 tokens; nothing is allocated.
   */
  cacheFullBlocks(seq: Sequence): void {
    if (!this.enablePrefixCaching) return;
    const full = Math.min(Math.floor(seq.numComputedTokens / this.blockSize), seq.numBlocks);
    if (full <= seq.numRegisteredBlocks) return;
    this.hashFullBlocks(seq, full);
    for (let i = seq.numRegisteredBlocks; i < full; i++) {
      const parentHash = i === 0 ? seq.cacheRoot : seq.blockHashes[i - 1]!;
      this.pool.register(seq.blockTable[i]!, seq.blockHashes[i]!, parentHash, seq.tokenIds, i * this.blockSize);
    }
    seq.numRegisteredBlocks = full;
  }

  /**
   * Releases every block of `seq`, last block first: a freed cached block joins the tail of the LRU
   * queue, so the request's last blocks end up nearest the head and are evicted before its first
   * blocks (which other requests are likelier to share).
   */
  free(seq: Sequence): void {
    for (let i = seq.numBlocks - 1; i >= 0; i--) this.pool.release(seq.blockTable[i]!);
    seq.numBlocks = 0;
    seq.numComputedTokens = 0;
    seq.numRegisteredBlocks = 0;
  }

  /**
   * Speculative rollback: only the first `numComputedTokens` tokens of `seq` keep valid K/V (the rest
   * held rejected proposals), so the counter moves back to them and blocks past them are freed. Those
   * blocks were never offered to the prefix cache: update registers blocks only after rolling back.
   */
  rollback(seq: Sequence, numComputedTokens: number): void {
    const keep = this.blocksFor(numComputedTokens);
    for (let i = seq.numBlocks - 1; i >= keep; i--) this.pool.release(seq.blockTable[i]!);
    seq.numBlocks = Math.min(seq.numBlocks, keep);
    seq.numComputedTokens = numComputedTokens;
    const full = Math.floor(numComputedTokens / this.blockSize);
    seq.numRegisteredBlocks = Math.min(seq.numRegisteredBlocks, full);
    seq.numHashedBlocks = Math.min(seq.numHashedBlocks, Math.floor(seq.numTokens / this.blockSize));
  }

  private blocksNeeded(seq: Sequence, numNewTokens: number, numHitBlocks: number): number {
    let takenFree = 0;
    let held = seq.numBlocks;
    let computed = seq.numComputedTokens;
    if (numHitBlocks > 0) {
      // Hit blocks sitting in the free queue leave it when taken, so they count against the free ones.
      for (let i = 0; i < numHitBlocks; i++) if (this.pool.refCount(seq.blockTable[i]!) === 0) takenFree++;
      held = numHitBlocks;
      computed = numHitBlocks * this.blockSize;
    }
    return Math.max(0, this.blocksFor(computed + numNewTokens) - held) + takenFree;
  }

  /** Fills seq.blockHashes for its first `numBlocks` full blocks (computed once per sequence). */
  private hashFullBlocks(seq: Sequence, numBlocks: number): void {
    for (let i = seq.numHashedBlocks; i < numBlocks; i++) {
      const parent = i === 0 ? seq.cacheRoot : seq.blockHashes[i - 1]!;
      seq.blockHashes[i] = hashBlock(parent, seq.tokenIds, i * this.blockSize, this.blockSize);
    }
    if (numBlocks > seq.numHashedBlocks) seq.numHashedBlocks = numBlocks;
  }
}

/**
 * Chained hash of one block: (parent hash, its tokens) → a non-negative 53-bit integer (exact in a
 * double), from two independent murmur3-style 32-bit lanes. Hits are verified token by token, so a
 * collision costs a miss, never wrong output.
 */
export function hashBlock(parentHash: number, tokens: Int32Array, start: number, n: number): number {
  let h1 = mix(0x9747b28c, parentHash >>> 0);
  let h2 = mix(0x5bd1e995, Math.floor(parentHash / TWO_32) >>> 0);
  for (let i = 0; i < n; i++) {
    const t = tokens[start + i]!;
    h1 = mix(h1, t);
    h2 = mix(h2 ^ 0x85ebca6b, t + i);
  }
  h1 = fmix(h1 ^ n);
  h2 = fmix(h2 ^ (n * 31));
  return (h1 >>> 0) * 2097152 + (h2 >>> 11);
}

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
