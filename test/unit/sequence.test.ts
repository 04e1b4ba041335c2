import { describe, expect, it } from 'vitest';
import { checkTokenStop } from '../../packages/engine/src/sequence.js';
import { makeSeq } from '../helpers/engine-fakes.js';

describe('Sequence', () => {
  it('starts waiting with the prompt uncomputed and sized for prompt + maxTokens', () => {
    const seq = makeSeq([5, 6, 7], { maxTokens: 30 });
    expect(seq.status).toBe('waiting');
    expect([seq.promptLen, seq.numTokens, seq.numComputedTokens, seq.numOutputTokens]).toEqual([3, 3, 0, 0]);
    expect(seq.isPrefill).toBe(true);
    expect(seq.blockTable.length).toBe(3); // ceil(33 / 16)
    expect(seq.lastTokenId).toBe(7);
  });

  it('counts output tokens and is a decode once one token behind', () => {
    const seq = makeSeq([5, 6, 7], { maxTokens: 2 });
    seq.numComputedTokens = 3;
    seq.appendToken(9);
    expect(seq.isPrefill).toBe(false);
    expect(seq.outputTokenIds()).toEqual([9]);
    seq.appendToken(10);
    expect(() => seq.appendToken(11)).toThrow(/assertion/);
  });

  it('finishes on a stop token after minTokens, and on length', () => {
    const seq = makeSeq([1], { maxTokens: 3, minTokens: 2 }, { stopTokenIds: [2] });
    seq.appendToken(2);
    expect(checkTokenStop(seq, 2, 100)).toBeNull(); // below minTokens
    seq.appendToken(2);
    expect(checkTokenStop(seq, 2, 100)).toBe('stop');
    expect(seq.stopReason).toBe(2);
    const long = makeSeq([1], { maxTokens: 2 });
    long.appendToken(5);
    expect(checkTokenStop(long, 5, 100)).toBeNull();
    long.appendToken(5);
    expect(checkTokenStop(long, 5, 100)).toBe('length');
    const ctx = makeSeq([1, 1], { maxTokens: 5 });
    ctx.appendToken(5);
    expect(checkTokenStop(ctx, 5, 3)).toBe('length'); // model context reached
  });
});
