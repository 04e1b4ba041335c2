/**
 * Allowed-token masks as the native step takes them (NativeStepBatch.tokenMask / tokenMaskOffsets): one
 * mask is ceil(vocabSize / 32) 32-bit words, bit (t % 32) of word (t >> 5) set when token t may be
 * sampled — the layout of XGrammar's getNextTokenBitmask(), so a matcher's mask is copied in as it is.
 * A step packs the masks of its guided sequences one after another and gives every sequence the word
 * offset of its own, or -1.
 */

/** Words of one mask over a vocabulary of `vocabSize` tokens. */
export function maskWords(vocabSize: number): number {
  return Math.ceil(vocabSize / 32);
}

/** Whether `mask` (from word `offset`) allows token `t`. */
export function allows(mask: Uint32Array, t: number, offset = 0): boolean {
  return ((mask[offset + (t >>> 5)]! >>> (t & 31)) & 1) === 1;
}

/** Tokens of [0, vocabSize) that `mask` allows. */
export function countAllowed(mask: Uint32Array, vocabSize: number, offset = 0): number {
  let n = 0;
  const words = maskWords(vocabSize);
  for (let w = 0; w < words; w++) {
    let bits = mask[offset + w]!;
    if (w === words - 1 && vocabSize % 32 !== 0) bits &= (1 << (vocabSize % 32)) - 1;
    bits -= (bits >>> 1) & 0x55555555;
    bits = (bits & 0x33333333) + ((bits >>> 2) & 0x33333333);
    n += (((bits + (bits >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
  }
  return n;
}

/** A mask allowing exactly `tokens`. */
export function maskOf(tokens: Iterable<number>, vocabSize: number): Uint32Array {
  const m = new Uint32Array(maskWords(vocabSize));
  for (const t of tokens) {
    if (!Number.isInteger(t) || t < 0 || t >= vocabSize) throw new RangeError(`token ${t} outside [0, ${vocabSize})`);
    m[t >>> 5]! |= 1 << (t & 31);
  }
  return m;
}

/**
 * One step's masks, packed: `add(s, mask)` copies sequence s's mask in and records its offset; the
 * buffer grows (doubling) only when a step has more guided sequences than any before. Unit of reuse:
 * one per model runner.
 */
export class MaskPacker {
  private readonly words: number;
  private buffer: Uint32Array;
  /** (maxNumSeqs) word offset of sequence s's mask in buffer, -1 = none. */
  readonly offsets: Int32Array;
  private used = 0;

  constructor(vocabSize: number, maxNumSeqs: number) {
    this.words = maskWords(vocabSize);
    this.buffer = new Uint32Array(this.words * 4);
    this.offsets = new Int32Array(maxNumSeqs).fill(-1);
  }

  /** Starts a step of `numSeqs` sequences, none masked yet. */
  reset(numSeqs: number): void {
    this.offsets.fill(-1, 0, numSeqs);
    this.used = 0;
  }

  /** Sequence s samples under `mask` (at least `words` long; extra words are ignored). */
  add(s: number, mask: Uint32Array): void {
    if (mask.length < this.words) throw new RangeError(`mask of ${mask.length} words, need ${this.words}`);
    if (this.used + this.words > this.buffer.length) {
      const grown = new Uint32Array(Math.max(this.buffer.length * 2, this.used + this.words));
      grown.set(this.buffer.subarray(0, this.used));
      this.buffer = grown;
    }
    this.buffer.set(mask.subarray(0, this.words), this.used);
    this.offsets[s] = this.used;
    this.used += this.words;
  }

  /** Whether any sequence of the step has a mask. */
  get any(): boolean {
    return this.used > 0;
  }

  /** The packed masks (valid until the next add()). */
  get tokenMask(): Uint32Array {
    return this.buffer;
  }
}
