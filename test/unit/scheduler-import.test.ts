/** Scheduler.admitImported (KV import): seats and blocks taken at once, or nothing; then an ordinary decode. */
import { describe, expect, it } from 'vitest';
import { fakeStep, makeScheduler, makeSeq } from '../helpers/engine-fakes.js';

/** A sequence as generateFromHandoff makes it: the prompt plus the first token sampled elsewhere. */
function imported(promptLen: number, maxTokens = 8) {
  const seq = makeSeq(promptLen, { maxTokens });
  seq.appendToken(7);
  return seq;
}

describe('Scheduler.admitImported', () => {
  it('takes blocks for the imported tokens, counts them computed, and decodes the first token next', () => {
    const s = makeScheduler({ numBlocks: 10 });
    const seq = imported(40);
    expect(s.admitImported(seq, 40)).toBe(true);
    expect([seq.status, seq.numBlocks, seq.numComputedTokens]).toEqual(['running', 3, 40]);
    expect(s.blockManager.pool.numFreeBlocks).toBe(7);
    const out = s.schedule();
    expect(out.seqs).toEqual([seq]);
    expect(out.numNewTokens).toEqual([1]); // position 40: the first token, never prefilled here
    s.update(out, fakeStep(out));
    expect(seq.numComputedTokens).toBe(41);
    s.finish(seq, 'abort');
    expect(s.blockManager.pool.numFreeBlocks).toBe(10);
  });

  it('refuses, taking nothing, when blocks or seats are short', () => {
    const s = makeScheduler({ numBlocks: 4, maxNumSeqs: 1 });
    const big = imported(80);
    expect(s.admitImported(big, 80)).toBe(false); // 5 blocks > 4
    expect([big.status, big.numBlocks, s.blockManager.pool.numFreeBlocks]).toEqual(['waiting', 0, 4]);
    const a = imported(16);
    expect(s.admitImported(a, 16)).toBe(true);
    const b = imported(16);
    expect(s.admitImported(b, 16)).toBe(false); // maxNumSeqs 1
    expect(b.numBlocks).toBe(0);
    expect(() => s.admitImported(a, 16)).toThrow(/assertion/);
  });
});
