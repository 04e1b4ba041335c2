/**
 * The KV blocks as numbers: refcounts, the free queue (LRU order) and the prefix cache's index, all in
 * typed arrays preallocated for the whole pool. The native addon owns the memory the ids point into.
 *
 * Free queue: a doubly linked list through `prev`/`next`. Allocation pops the head. A freed block that
 * holds a cached (hashed) full block goes to the tail, so cached blocks are evicted least recently
 * freed first; a freed block holding nothing reusable goes to the head. A cache hit on a free block
 * takes it out of the queue.
 */

const NONE = -1;

export class BlockPool {
  readonly numBlocks: number;
  readonly blockSize: number;
  /** (numBlocks) references held by sequences. */
  private readonly refCounts: Int32Array;
  /** (numBlocks) chained hash of the cached full block, or -1. */
  private readonly hashes: Float64Array;
  /** (numBlocks) hash of the previous block in the chain (or of the chain's root). */
  private readonly parentHashes: Float64Array;
  /** (numBlocks, blockSize) the tokens of each cached block, to rule out hash collisions on a hit. */
  private readonly tokens: Int32Array;
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly inQueue: Uint8Array;
  private head = NONE;
  private tail = NONE;
  private free = 0;
  /** hash → block id of every cached block (free or in use). */
  private readonly cached = new Map<number, number>();
  /** Cached blocks dropped to make room. */
  numEvictions = 0;

  constructor(numBlocks: number, blockSize: number) {
    if (!(numBlocks > 0) || !(blockSize > 0)) throw new Error(`assertion: bad pool ${numBlocks} x ${blockSize}`);
    this.numBlocks = numBlocks;
    this.blockSize = blockSize;
    this.refCounts = new Int32Array(numBlocks);
    this.hashes = new Float64Array(numBlocks).fill(NONE);
    this.parentHashes = new Float64Array(numBlocks).fill(NONE);
    this.tokens = new Int32Array(numBlocks * blockSize);
    this.prev = new Int32Array(numBlocks).fill(NONE);
    this.next = new Int32Array(numBlocks).fill(NONE);
    this.inQueue = new Uint8Array(numBlocks);
    for (let b = 0; b < numBlocks; b++) this.pushTail(b);
  }

  /** Blocks that can be handed out (free, cached or not). */
  get numFreeBlocks(): number {
    return this.free;
  }

  /** Blocks in the prefix cache's index (in use or free). */
  get numCachedBlocks(): number {
    return this.cached.size;
  }

  /** Fraction of blocks referenced by some sequence, 0..1. */
  get usage(): number {
    return 1 - this.free / this.numBlocks;
  }

  refCount(block: number): number {
    return this.refCounts[block]!;
  }

  isCached(block: number): boolean {
    return this.hashes[block]! !== NONE;
  }

  /** A fresh block with one reference, evicting the least recently freed cached block if need be; -1 when none is free. */
  allocate(): number {
    const b = this.head;
    if (b === NONE) return NONE;
    this.unlink(b);
    if (this.hashes[b]! !== NONE) {
      this.cached.delete(this.hashes[b]!);
      this.hashes[b] = NONE;
      this.numEvictions++;
    }
    this.refCounts[b] = 1;
    return b;
  }

  /** One more reference to a block (a prefix hit or a shared prompt block); a free block leaves the queue. */
  incRef(block: number): void {
    if (this.refCounts[block]! === 0) this.unlink(block);
    this.refCounts[block]!++;
  }

  /** Drops one reference; at zero the block is free again (cached ones to the tail, others to the head). */
  release(block: number): void {
    const rc = --this.refCounts[block]!;
    if (rc < 0) throw new Error(`assertion: block ${block} released more often than taken`);
    if (rc > 0) return;
    if (this.hashes[block]! !== NONE) this.pushTail(block);
    else this.pushHead(block);
  }

  /** The cached block with this hash whose parent hash and tokens match, or -1. */
  lookup(hash: number, parentHash: number, tokens: Int32Array, start: number): number {
    const b = this.cached.get(hash);
    if (b === undefined || this.parentHashes[b]! !== parentHash) return NONE;
    const base = b * this.blockSize;
    for (let i = 0; i < this.blockSize; i++) if (this.tokens[base + i]! !== tokens[start + i]!) return NONE;
    return b;
  }

  /**
   * Enters a full, computed block into the prefix cache. False when the block is already cached or
   * another block holds the same content (two sequences computed it at once; the first one stays).
   */
  register(block: number, hash: number, parentHash: number, tokens: Int32Array, start: number): boolean {
    if (this.hashes[block]! !== NONE || this.cached.has(hash)) return false;
    this.hashes[block] = hash;
    this.parentHashes[block] = parentHash;
    const base = block * this.blockSize;
    for (let i = 0; i < this.blockSize; i++) this.tokens[base + i] = tokens[start + i]!;
    this.cached.set(hash, block);
    return true;
  }

  /** Empties the prefix cache (blocks in use keep their contents but will not be found again). */
  resetPrefixCache(): void {
    for (const b of this.cached.values()) this.hashes[b] = NONE;
    this.cached.clear();
  }

  /** Block ids in the order allocate() would hand them out (for tests and debugging). */
  freeQueue(): number[] {
    const out: number[] = [];
    for (let b = this.head; b !== NONE; b = this.next[b]!) out.push(b);
    return out;
  }

  private pushTail(b: number): void {
    this.prev[b] = this.tail;
    this.next[b] = NONE;
    if (this.tail !== NONE) this.next[this.tail] = b;
    else this.head = b;
    this.tail = b;
    this.inQueue[b] = 1;
    this.free++;
  }

  private pushHead(b: number): void {
    this.next[b] = this.head;
    this.prev[b] = NONE;
    if (this.head !== NONE) this.prev[this.head] = b;
    else this.tail = b;
    this.head = b;
    this.inQueue[b] = 1;
    this.free++;
  }

  private unlink(b: number): void {
    if (this.inQueue[b]! !== 1) throw new Error(`assertion: block ${b} is not free`);
    const p = this.prev[b]!;
    const n = this.next[b]!;
    if (p !== NONE) this.next[p] = n;
    else this.head = n;
    if (n !== NONE) this.prev[n] = p;
    else this.tail = p;
    this.prev[b] = NONE;
    this.next[b] = NONE;
    this.inQueue[b] = 0;
    this.free--;
  }
}
