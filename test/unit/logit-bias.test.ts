/**
 * logit-bias.ts on plain sequences: the request's logitBias, the min_tokens ban on stop tokens (EOS
 * included) while fewer than minTokens are out, a ban replacing a bias of the same id, repeated stop
 * ids written once — and the ModelRunner handing the arrays to the native step only when needed.
 */
import { describe, expect, it } from 'vitest';
import { hasLogitBias, logitBiasSize, writeLogitBias } from '../../packages/engine/src/logit-bias.js';
import { ModelRunner } from '../../packages/engine/src/model-runner.js';
import type { SamplingParams } from '../../packages/engine/src/sampling-params.js';
import type { Sequence } from '../../packages/engine/src/sequence.js';
import { fakeStep, makeScheduler, makeSeq } from '../helpers/engine-fakes.js';

const seq = (params: SamplingParams, stopTokenIds: number[]) =>
  makeSeq([5, 6], { maxTokens: 10, ...params }, { stopTokenIds });

function entries(s: Sequence): Array<[number, number]> {
  const ids = new Int32Array(logitBiasSize(s));
  const vals = new Float32Array(ids.length);
  const n = writeLogitBias(s, ids, vals, 0);
  return Array.from(ids.subarray(0, n), (id, i) => [id, vals[i]!]);
}

describe('logit bias', () => {
  it('is empty without logitBias or minTokens', () => {
    const s = seq({}, [2]);
    expect(hasLogitBias(s)).toBe(false);
    expect(entries(s)).toEqual([]);
  });

  it('bans the stop tokens while fewer than minTokens are out, then lifts the ban', () => {
    const s = seq({ minTokens: 2, maxTokens: 10 }, [2, 7, 2]);
    expect(entries(s)).toEqual([
      [2, -Infinity],
      [7, -Infinity],
    ]);
    s.appendToken(11);
    expect(entries(s)).toEqual([
      [2, -Infinity],
      [7, -Infinity],
    ]); // 1 out: the 2nd may not stop yet
    s.appendToken(12);
    expect(hasLogitBias(s)).toBe(false); // 2 out: a stop token may come third
    expect(seq({ minTokens: 3 }, []).params.minTokens).toBe(3);
    expect(hasLogitBias(seq({ minTokens: 3 }, []))).toBe(false); // nothing to ban (ignoreEos, no stop ids)
  });

  it('keeps the request bias beside the ban, the ban winning on a shared id', () => {
    const s = seq({ minTokens: 1, logitBias: { 7: 50, 3: -2 } }, [7, 2]);
    expect(entries(s)).toEqual([
      [3, -2],
      [7, -Infinity],
      [2, -Infinity],
    ]);
    s.appendToken(11);
    expect(entries(s)).toEqual([
      [3, -2],
      [7, 50],
    ]);
  });

  it('reaches the native batch only in steps that have some', () => {
    const s = makeScheduler({ numBlocks: 20, blockSize: 4 });
    const runner = new ModelRunner(
      {
        step: async () => {
          throw new Error('not run');
        },
      },
      { blockSize: 4, maxNumBatchedTokens: 64, maxNumSeqs: 4, maxModelLen: 64 },
    );
    const plain = seq({}, [2]);
    s.add(plain);
    let out = s.schedule();
    expect(runner.prepare(out).biasOffsets).toBeUndefined();
    s.update(out, fakeStep(out));
    const biased = seq({ logitBias: { 9: 4 } }, [2]);
    s.add(biased);
    out = s.schedule();
    const b = runner.prepare(out);
    expect(out.seqs).toEqual([plain, biased]);
    expect(Array.from(b.biasOffsets!.subarray(0, 3))).toEqual([0, 0, 1]);
    expect([b.biasTokens![0], b.biasValues![0]]).toEqual([9, 4]);
    s.update(out, fakeStep(out));
    s.finish(biased, 'abort');
    out = s.schedule();
    expect(out.seqs).toEqual([plain]);
    expect(runner.prepare(out).biasOffsets).toBeUndefined();
  });
});
