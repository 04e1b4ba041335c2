/**
 * The pure verification functions on plain arrays: greedy acceptance, and a statistical check that
 * rejection sampling emits tokens distributed as the target p whatever the draft q (chi-square over
 * many seeded draws), for a draft distribution and for a deterministic (n-gram) proposal.
 */
import { describe, expect, it } from 'vitest';
import {
  drawFrom,
  drawResidual,
  verifyGreedy,
  verifyProposals,
} from '../../packages/engine/src/sample/rejection-sampler.js';
import { uniform } from '../../packages/engine/src/sample/sampler.js';

const p = [0.5, 0.2, 0.15, 0.1, 0.05];
const q = [0.1, 0.4, 0.2, 0.2, 0.1];
const N = 20000;

/** Chi-square statistic of observed counts against probabilities. */
function chiSquare(counts: number[], probs: number[], n: number): number {
  return counts.reduce((acc, c, i) => acc + (c - n * probs[i]!) ** 2 / (n * probs[i]!), 0);
}
// 99.9% quantile of chi-square with 4 degrees of freedom.
const CHI2_4_999 = 18.47;

describe('verifyGreedy', () => {
  it('accepts while the argmax matches, then emits the argmax; bonus when all match', () => {
    expect(verifyGreedy([5, 6, 7], [5, 6, 7, 8])).toEqual({ tokens: [5, 6, 7, 8], numAccepted: 3 });
    expect(verifyGreedy([5, 6, 7], [5, 9, 7, 8])).toEqual({ tokens: [5, 9], numAccepted: 1 });
    expect(verifyGreedy([5], [4, 1])).toEqual({ tokens: [4], numAccepted: 0 });
    expect(verifyGreedy([], [3])).toEqual({ tokens: [3], numAccepted: 0 });
  });
});

describe('verifyProposals', () => {
  it('emits the first token distributed as p when proposals come from q (chi-square, 20k seeded draws)', () => {
    const counts = [0, 0, 0, 0, 0];
    let accepted = 0;
    for (let seed = 0; seed < N; seed++) {
      const x = drawFrom(q, uniform(seed, 1));
      const r = verifyProposals([x], [p, p], [q], { accept: () => uniform(seed, 2), resample: () => uniform(seed, 3) });
      counts[r.tokens[0]!]++;
      accepted += r.numAccepted;
    }
    expect(chiSquare(counts, p, N)).toBeLessThan(CHI2_4_999);
    // Acceptance probability is sum_x min(p(x), q(x)) = 0.1 + 0.2 + 0.15 + 0.1 + 0.05 = 0.6.
    expect(accepted / N).toBeCloseTo(0.6, 1);
  });

  it('emits p for a deterministic proposal (q one-hot, as n-gram lookup)', () => {
    const counts = [0, 0, 0, 0, 0];
    for (let seed = 0; seed < N; seed++) {
      const r = verifyProposals([1], [p, p], null, {
        accept: () => uniform(seed, 7),
        resample: () => uniform(seed, 8),
      });
      counts[r.tokens[0]!]++;
    }
    expect(chiSquare(counts, p, N)).toBeLessThan(CHI2_4_999);
  });

  it('keeps every position distributed as p along a chain of k = 3 (second token given the first)', () => {
    const p2 = [0.05, 0.05, 0.3, 0.3, 0.3];
    const counts = [0, 0, 0, 0, 0];
    let n = 0;
    for (let seed = 0; seed < N; seed++) {
      const xs = [drawFrom(q, uniform(seed, 1)), drawFrom(q, uniform(seed, 2)), drawFrom(q, uniform(seed, 3))];
      const r = verifyProposals(xs, [p, p2, p, p], [q, q, q], {
        accept: (i) => uniform(seed ^ 0xabc, i),
        resample: (i) => uniform(seed ^ 0xdef, i),
      });
      if (r.tokens.length < 2) continue;
      counts[r.tokens[1]!]++;
      n++;
    }
    expect(chiSquare(counts, p2, n)).toBeLessThan(CHI2_4_999);
  });

  it('emits the bonus token from the last row when all proposals are accepted', () => {
    const onehot = [0, 0, 1, 0, 0];
    const r = verifyProposals([2, 2], [onehot, onehot, [0, 0, 0, 0, 1]], [onehot, onehot], {
      accept: () => 0.99,
      resample: () => 0.5,
    });
    expect(r).toEqual({ tokens: [2, 2, 4], numAccepted: 2 });
  });

  it('rejects the whole chain length check', () => {
    expect(() => verifyProposals([1, 2], [p], [q, q], { accept: () => 0, resample: () => 0 })).toThrow(/assertion/);
  });
});

describe('drawResidual', () => {
  it('samples norm(max(0, p - q)) and falls back to p when the residual is empty', () => {
    // max(0, p - q) = [0.4, 0, 0, 0, 0]: always token 0.
    expect(drawResidual(p, q, 1, 0.999)).toBe(0);
    expect(drawResidual(p, p, 0, 0.0)).toBe(0);
    expect(drawResidual(p, null, 0, 0.0)).toBe(1); // one-hot q at 0 removes token 0
  });
});
