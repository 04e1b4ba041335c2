/** takeAhead (SpeculativePipeline's proposing ahead): when a reply made ahead serves the next round, on plain data. */
import { describe, expect, it } from 'vitest';
import type { DraftProposalWire } from '../../packages/deployments/src/draft-model.js';
import { takeAhead } from '../../packages/deployments/src/spec-lookahead.js';

const reply = (tokens: number[], q: number[][] | null = null): Promise<DraftProposalWire> =>
  Promise.resolve({ tokens, q, ms: 2 });

describe('takeAhead', () => {
  const base = [1, 2, 3, 10, 11];
  it('serves the next round when the kept tokens are the base plus the guessed token', async () => {
    expect(await takeAhead({ base, reply: reply([12, 13, 14, 15]) }, [...base, 12], 3)).toEqual({
      tokens: [13, 14, 15],
      q: null,
      ms: 2,
    });
    // Fewer proposals wanted than made ahead (little room left): the first ones.
    expect((await takeAhead({ base, reply: reply([12, 13, 14, 15]) }, [...base, 12], 2))!.tokens).toEqual([13, 14]);
  });

  it('refuses a guess that failed, a rejected proposal, another length, or a failed call', async () => {
    expect(await takeAhead({ base, reply: reply([12, 13, 14]) }, [...base, 9], 2)).toBeNull();
    expect(await takeAhead({ base, reply: reply([12, 13, 14]) }, [1, 2, 3, 10, 7, 12], 2)).toBeNull();
    expect(await takeAhead({ base, reply: reply([12, 13, 14]) }, [1, 2, 3, 10, 9], 2)).toBeNull();
    expect(await takeAhead({ base, reply: reply([12, 13, 14]) }, [...base, 12, 13], 2)).toBeNull();
    expect(await takeAhead({ base, reply: Promise.reject(new Error('draft died')) }, [...base, 12], 2)).toBeNull();
    // Only the guess, no proposals after it; or a sampled reply (with q).
    expect(await takeAhead({ base, reply: reply([12]) }, [...base, 12], 2)).toBeNull();
    expect(await takeAhead({ base, reply: reply([12, 13], [[1], [1]]) }, [...base, 12], 2)).toBeNull();
  });

  it('does not wait for the reply when the base does not match', async () => {
    const never = new Promise<DraftProposalWire>(() => {});
    expect(await takeAhead({ base, reply: never }, [1, 2, 4, 10, 11, 12], 2)).toBeNull();
  });
});
