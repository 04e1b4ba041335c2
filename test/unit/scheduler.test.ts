import { describe, expect, it } from 'vitest';
import type { Sequence } from '../../packages/engine/src/sequence.js';
import { drain, fakeStep, makeScheduler, makeSeq } from '../helpers/engine-fakes.js';

const outputs = (seqs: Sequence[]) => seqs.map((s) => s.outputTokenIds());
let base = 10_000;
/** A prompt sharing no prefix with any other. */
const fresh = (n: number) => Array.from({ length: n }, () => base++);

describe('Scheduler', () => {
  it('admits waiting prompts while the token budget lasts and caps running sequences', () => {
    const s = makeScheduler({ numBlocks: 100, maxNumBatchedTokens: 64, maxNumSeqs: 3, enableChunkedPrefill: false });
    const seqs = [20, 20, 30, 10, 5].map((n) => makeSeq(fresh(n)));
    seqs.forEach((q) => s.add(q));
    const out = s.schedule();
    expect(out.seqs).toEqual(seqs.slice(0, 2)); // the third (30) does not fit the 24 left, and FCFS holds the rest
    expect(out.numBatchedTokens).toBe(40);
    s.update(out, fakeStep(out));
    const next = s.schedule();
    expect(next.seqs).toEqual([seqs[0], seqs[1], seqs[2]]); // two decodes, then the 30-token prompt
    expect(next.numNewTokens).toEqual([1, 1, 30]);
    s.update(next, fakeStep(next));
    expect(s.running.length).toBe(3);
    expect(s.schedule().seqs.length).toBe(3); // maxNumSeqs: seqs 3 and 4 wait
  });

  it('chunks a long prompt across steps and samples only after its last chunk', () => {
    const s = makeScheduler({ numBlocks: 100, maxNumBatchedTokens: 32 });
    const long = makeSeq(80, { maxTokens: 2 });
    s.add(long);
    const chunks: number[] = [];
    const steps = drain(s, 100, (out) => chunks.push(out.numNewTokens[0]!));
    expect(chunks).toEqual([32, 32, 16, 1]);
    expect(steps[0]!.seqs[0]!.numOutputTokens).toBe(2);
    expect(long.finishReason).toBe('length');
  });

  it('admits a prompt that wants prompt logprobs whole, in a step with room for all of it, and without prefix hits', () => {
    const s = makeScheduler({ numBlocks: 100, maxNumBatchedTokens: 32, blockSize: 4 });
    const first = makeSeq(12, { maxTokens: 4 }, { blockSize: 4 });
    s.add(first);
    let out = s.schedule();
    s.update(out, fakeStep(out));
    const scored = makeSeq(12, { maxTokens: 2, promptLogprobs: 0 }, { blockSize: 4 }); // the same prompt: its blocks are cached
    const other = makeSeq(
      Array.from({ length: 24 }, (_, i) => 500 + i),
      { maxTokens: 2 },
      { blockSize: 4 },
    );
    s.add(other);
    s.add(scored);
    out = s.schedule(); // first decodes (1), other takes 24: 7 left, scored (12) waits rather than being chunked
    expect(out.seqs).toEqual([first, other]);
    s.update(out, fakeStep(out));
    out = s.schedule();
    expect(out.seqs).toContain(scored);
    expect(out.numNewTokens[out.seqs.indexOf(scored)]).toBe(12);
    expect(scored.numCachedTokens).toBe(0);
  });

  it('schedules decodes first, then partway prefills, then new prompts in the remaining budget', () => {
    const s = makeScheduler({ numBlocks: 100, maxNumBatchedTokens: 40 });
    const a = makeSeq(10, { maxTokens: 50 });
    s.add(a);
    let out = s.schedule();
    s.update(out, fakeStep(out)); // a is decoding now
    const b = makeSeq(60, { maxTokens: 50 });
    s.add(b);
    out = s.schedule();
    expect(out.seqs).toEqual([a, b]);
    expect(out.numNewTokens).toEqual([1, 39]); // b chunked into the rest of the budget
    s.update(out, fakeStep(out));
    const c = makeSeq(5, { maxTokens: 50 });
    s.add(c);
    out = s.schedule();
    expect(out.seqs).toEqual([a, b, c]);
    expect(out.numNewTokens).toEqual([1, 21, 5]);
  });

  it('preempts the newest running sequence when blocks run out, and it resumes with the same output', () => {
    const prompts = [12, 13, 14, 15].map((n) => Array.from({ length: n }, (_, i) => 7 * n + i));
    const alone = prompts.map((p) => {
      const s = makeScheduler({ numBlocks: 100, blockSize: 4 });
      const q = makeSeq(p, { maxTokens: 20 }, { blockSize: 4 });
      s.add(q);
      drain(s);
      return q;
    });
    const s = makeScheduler({ numBlocks: 16, blockSize: 4 }); // 4 sequences x 8 blocks do not fit
    const seqs = prompts.map((p) => makeSeq(p, { maxTokens: 20 }, { blockSize: 4 }));
    seqs.forEach((q) => s.add(q));
    const preemptedOrder: number[] = [];
    drain(s, 1000, (out) => out.preempted.forEach((q) => preemptedOrder.push(seqs.indexOf(q))));
    expect(s.numPreemptions).toBeGreaterThan(0);
    expect(preemptedOrder[0]).toBe(3); // the newest goes first
    expect(outputs(seqs)).toEqual(outputs(alone));
    expect(seqs.every((q) => q.finishReason === 'length')).toBe(true);
    expect(s.blockManager.pool.numFreeBlocks).toBe(16);
  });

  it('a resumed sequence finds its own blocks in the prefix cache', () => {
    const s = makeScheduler({ numBlocks: 12, blockSize: 4 });
    const a = makeSeq(16, { maxTokens: 30 }, { blockSize: 4 });
    const b = makeSeq(16, { maxTokens: 30 }, { blockSize: 4 });
    s.add(a);
    s.add(b);
    let resumedWithHits = 0;
    drain(s, 1000, (out) => {
      out.seqs.forEach((q, i) => {
        if (q.numPreemptions > 0 && q.numCachedTokens > 0 && out.numNewTokens[i]! < q.numTokens) resumedWithHits++;
      });
    });
    expect(s.numPreemptions).toBeGreaterThan(0);
    expect(resumedWithHits).toBeGreaterThan(0);
  });

  it('admits a prompt with a cached prefix computing only the rest', () => {
    const s = makeScheduler({ numBlocks: 50 });
    const system = Array.from({ length: 48 }, (_, i) => i + 1);
    const a = makeSeq([...system, 500, 501], { maxTokens: 1 });
    s.add(a);
    drain(s);
    const b = makeSeq([...system, 600], { maxTokens: 1 });
    const c = makeSeq([9, ...system], { maxTokens: 1 });
    s.add(b);
    s.add(c);
    const out = s.schedule();
    expect(out.numNewTokens).toEqual([1, 49]); // b hits 3 blocks, c misses
    expect(b.numCachedTokens).toBe(48);
    expect(c.numCachedTokens).toBe(0);
    s.update(out, fakeStep(out));
    expect(s.blockManager.stats.prefixHitTokens).toBe(48);
  });

  it('returns every block after every request, finished or aborted anywhere', () => {
    const s = makeScheduler({ numBlocks: 40, blockSize: 4, maxNumBatchedTokens: 24 });
    const seqs = Array.from({ length: 30 }, (_, i) =>
      makeSeq(3 + ((i * 7) % 25), { maxTokens: 1 + (i % 9) }, { blockSize: 4 }),
    );
    seqs.forEach((q) => s.add(q));
    let step = 0;
    while (s.hasWork) {
      const out = s.schedule();
      if (++step % 3 === 0 && s.running.length) s.finish(s.running[s.running.length - 1]!, 'abort'); // abort mid-step
      if (step % 5 === 0 && s.waiting.length) s.finish(s.waiting[0]!, 'abort');
      s.update(out, fakeStep(out));
    }
    expect(seqs.some((q) => q.finishReason === 'abort')).toBe(true);
    expect(seqs.every((q) => q.status === 'finished' && q.numBlocks === 0)).toBe(true);
    const pool = s.blockManager.pool;
    expect(pool.numFreeBlocks).toBe(40);
    for (let b = 0; b < 40; b++) expect(pool.refCount(b)).toBe(0);
  });

  it('runs n > 1 samples on the prompt blocks of sample 0', () => {
    const s = makeScheduler({ numBlocks: 30, blockSize: 4, prefixCaching: false });
    const parent = makeSeq(18, { maxTokens: 5, n: 3 }, { blockSize: 4, seed: 1 });
    const kids = [1, 2].map((i) =>
      makeSeq(18, { maxTokens: 5, n: 3 }, { blockSize: 4, parent, index: i, seed: 1 + i }),
    );
    [parent, ...kids].forEach((q) => s.add(q));
    const first = s.schedule();
    expect(first.seqs).toEqual([parent]); // samples wait for the prompt blocks
    s.update(first, fakeStep(first));
    const second = s.schedule();
    expect(second.seqs).toEqual([parent, ...kids]);
    expect(second.numNewTokens).toEqual([1, 2, 2]); // 4 shared blocks, 2 tokens recomputed each
    expect(kids[0]!.blockTable[0]).toBe(parent.blockTable[0]);
    s.update(second, fakeStep(second));
    drain(s);
    expect(new Set(outputs([parent, ...kids]).map(String)).size).toBe(3); // different seeds, different samples
    expect(s.blockManager.pool.numFreeBlocks).toBe(30);
  });

  it('stops on a stop token only after minTokens', () => {
    const s = makeScheduler({ numBlocks: 10 });
    const seqA = makeSeq(4, { maxTokens: 10 });
    s.add(seqA);
    drain(s);
    const stopAt = seqA.outputTokenIds()[1]!;
    const b = makeSeq(4, { maxTokens: 10 }, { stopTokenIds: [stopAt] });
    const c = makeSeq(4, { maxTokens: 10, minTokens: 5 }, { stopTokenIds: [stopAt] });
    s.add(b);
    s.add(c);
    drain(s);
    expect(b.finishReason).toBe('stop');
    expect(b.stopReason).toBe(stopAt);
    expect(b.numOutputTokens).toBe(2);
    expect(c.numOutputTokens).toBe(10);
  });

  it('leaves requests waiting, never throws, when blocks are exhausted', () => {
    const s = makeScheduler({ numBlocks: 2, blockSize: 4 });
    const a = makeSeq(8, { maxTokens: 1 }, { blockSize: 4 });
    const b = makeSeq(8, { maxTokens: 1 }, { blockSize: 4 });
    s.add(a);
    s.add(b);
    const out = s.schedule();
    expect(out.seqs).toEqual([a]);
    expect(s.waiting).toEqual([b]);
    s.update(out, fakeStep(out));
    expect(s.schedule().seqs).toEqual([b]);
  });
});
