/** N-gram prompt lookup, speculative metrics and the TS sampler's pure parts. */
import { describe, expect, it } from 'vitest';
import { proposeNgram } from '../../packages/engine/src/spec-decode/ngram-proposer.js';
import {
  applyPenalties,
  argmax,
  distribution,
  sampleLogits,
  uniform,
  walk,
  candidates,
} from '../../packages/engine/src/sample/sampler.js';
import { SpecDecodeMetrics } from '../../packages/engine/src/spec-decode/spec-metrics.js';

const params = {
  temperature: 1,
  topK: 0,
  topP: 1,
  minP: 0,
  repetitionPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
};

describe('proposeNgram', () => {
  it('continues the latest earlier occurrence of the longest matching suffix', () => {
    const t = [1, 2, 3, 4, 9, 1, 2, 3, 5, 6, 1, 2, 3];
    expect(proposeNgram(t, t.length, 2)).toEqual([5, 6]); // latest match of [1,2,3] is at 5
    expect(proposeNgram(t, t.length, 5)).toEqual([5, 6, 1, 2, 3]);
  });

  it('continues a match near the end periodically, so a loop proposes k tokens', () => {
    expect(proposeNgram([4, 5, 9, 9, 9], 5, 4)).toEqual([9, 9, 9, 9]);
    expect(proposeNgram([1, 2, 3, 1, 2], 5, 5)).toEqual([3, 1, 2, 3, 1]);
  });

  it('falls back to shorter suffixes, respects minN and returns [] without a match', () => {
    expect(proposeNgram([7, 8, 7], 3, 3)).toEqual([8, 7, 8]);
    expect(proposeNgram([7, 8, 7], 3, 3, { minN: 2 })).toEqual([]);
    expect(proposeNgram([1, 2, 3], 3, 3)).toEqual([]);
    expect(proposeNgram([1], 1, 3)).toEqual([]);
  });
});

describe('SpecDecodeMetrics', () => {
  it('counts drafts, acceptance and per-position rates over judged positions only', () => {
    const m = new SpecDecodeMetrics();
    m.record(3, 3);
    m.record(3, 1);
    m.record(3, 0);
    m.record(0, 0);
    const s = m.stats();
    expect([s.drafts, s.draftTokens, s.acceptedTokens]).toEqual([3, 9, 4]);
    expect(s.triedByPosition).toEqual([3, 2, 1]);
    expect(s.acceptanceByPosition).toEqual([2 / 3, 1 / 2, 1]);
    // vLLM's accepted-per-position counters: they sum to the accepted tokens
    expect(s.acceptedByPosition).toEqual([2, 1, 1]);
    expect(s.agreementRate).toBeCloseTo(4 / 6);
    expect(s.meanTokensPerPass).toBeCloseTo(7 / 3);
  });
});

describe('TS sampler', () => {
  it('draws uniforms in [0, 1) that depend on (seed, position) only', () => {
    const a = uniform(42, 7);
    expect(a).toBe(uniform(42, 7));
    expect(a).not.toBe(uniform(42, 8));
    let sum = 0;
    for (let i = 0; i < 5000; i++) sum += uniform(1, i);
    expect(sum / 5000).toBeCloseTo(0.5, 1);
  });

  it('greedy is the first maximum; distributions are normalised and cut by top-k / min-p', () => {
    const logits = Float32Array.from([1, 3, 3, 0]);
    expect(argmax(logits)).toBe(1);
    expect(sampleLogits(logits, { ...params, temperature: 0 }, 1, 1)).toBe(1);
    const d = distribution(logits, params);
    expect(d.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10);
    const k2 = distribution(logits, { ...params, topK: 2 });
    expect([k2[0], k2[3]]).toEqual([0, 0]);
    expect(k2[1]).toBeCloseTo(0.5);
    const mp = distribution(logits, { ...params, minP: 0.2 });
    expect(mp[3]).toBe(0);
    expect(walk(candidates(logits, params), 0)).toBe(0);
  });

  it('applies penalties as vLLM: repetition over prompt + output once per token, presence/frequency over output', () => {
    const logits = Float32Array.from([2, -2, 1, 1]);
    applyPenalties(
      logits,
      { ...params, repetitionPenalty: 2, presencePenalty: 0.5, frequencyPenalty: 0.25 },
      [0, 1, 2, 2, 0],
      2,
      5,
    );
    expect(Array.from(logits)).toEqual([2 / 2 - 0.25 - 0.5, -4, 0.5 - 0.5 - 0.5, 1]);
  });
});
