/**
 * EmbeddingQueue's policy with a fake model: what one step takes (arrival order, token and sequence
 * budgets, free KV blocks), the batch it hands the model (whole prompts from position 0, slots in fresh
 * blocks), blocks given back, aborts, failures; and poolingOf reading a sentence-transformers config.
 */
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BlockPool } from '../../packages/engine/src/block-pool.js';
import { EmbeddingQueue, poolingOf } from '../../packages/engine/src/embeddings.js';
import type { NativeStepBatch } from '../../packages/engine/src/native/native-types.js';

const DIM = 4;

/** A model whose vector for sequence s is [first token, length, s, pooling === 'mean'], recording each batch. */
function fakeModel(fail = false) {
  const calls: Array<{
    numSeqs: number;
    numTokens: number;
    positions: number[];
    slots: number[];
    contextLens: number[];
  }> = [];
  return {
    calls,
    async embed(b: NativeStepBatch, pooling: string, out?: Float32Array) {
      calls.push({
        numSeqs: b.numSeqs,
        numTokens: b.numTokens,
        positions: Array.from(b.positions.subarray(0, b.numTokens)),
        slots: Array.from(b.slotMapping.subarray(0, b.numTokens)),
        contextLens: Array.from(b.contextLens.subarray(0, b.numSeqs)),
      });
      if (fail) throw Object.assign(new Error('boom'), { code: 'E_BATCH' });
      const o = out!;
      for (let s = 0; s < b.numSeqs; s++) {
        const q0 = b.queryStartLoc[s]!;
        o.set([b.tokenIds[q0]!, b.queryStartLoc[s + 1]! - q0, s, pooling === 'mean' ? 1 : 0], s * DIM);
      }
      return o.subarray(0, b.numSeqs * DIM);
    },
  };
}

const opts = {
  blockSize: 4,
  maxNumBatchedTokens: 16,
  maxNumSeqs: 3,
  maxModelLen: 16,
  dim: DIM,
  pooling: 'last' as const,
};

describe('EmbeddingQueue', () => {
  it('takes requests in arrival order up to the token and sequence budgets, one model call per step', async () => {
    const model = fakeModel();
    const pool = new BlockPool(64, 4);
    const q = new EmbeddingQueue(model, pool, opts);
    const ps = [[1, 2, 3], [4, 5, 6, 7, 8, 9], [10], [11, 12, 13, 14, 15, 16, 17, 18], [19]].map((ids) => q.add(ids));
    expect(q.numWaiting).toBe(5);
    expect(await q.step()).toBe(true); // 3 + 6 + 1 tokens, 3 sequences (the budget)
    expect(model.calls[0]).toMatchObject({ numSeqs: 3, numTokens: 10, contextLens: [3, 6, 1] });
    expect(model.calls[0]!.positions).toEqual([0, 1, 2, 0, 1, 2, 3, 4, 5, 0]);
    expect(await q.step()).toBe(true); // 8 + 1
    expect(model.calls[1]).toMatchObject({ numSeqs: 2, numTokens: 9 });
    expect(q.hasWork).toBe(false);
    const out = await Promise.all(ps);
    expect(out.map((o) => Array.from(o.embedding))).toEqual([
      [1, 3, 0, 0],
      [4, 6, 1, 0],
      [10, 1, 2, 0],
      [11, 8, 0, 0],
      [19, 1, 1, 0],
    ]);
    expect(out.map((o) => o.promptTokens)).toEqual([3, 6, 1, 8, 1]);
    expect(pool.numFreeBlocks).toBe(64); // every block back
  });

  it('writes each sequence into its own fresh blocks', async () => {
    const model = fakeModel();
    const q = new EmbeddingQueue(model, new BlockPool(8, 4), opts);
    const a = q.add([1, 2, 3, 4, 5]);
    const b = q.add([6, 7]);
    await q.step();
    await Promise.all([a, b]);
    const slots = model.calls[0]!.slots;
    const blocks = slots.map((s) => Math.floor(s / 4));
    expect(new Set(blocks.slice(0, 5)).size).toBe(2);
    expect(blocks.slice(5).every((x) => !blocks.slice(0, 5).includes(x))).toBe(true);
    expect(slots.slice(0, 4).map((s) => s % 4)).toEqual([0, 1, 2, 3]);
  });

  it('waits (step false) while the pool lacks blocks for the oldest request', async () => {
    const pool = new BlockPool(4, 4);
    const held = [pool.allocate(), pool.allocate(), pool.allocate()];
    const q = new EmbeddingQueue(fakeModel(), pool, opts);
    const p = q.add([1, 2, 3, 4, 5, 6]); // 2 blocks, 1 free
    expect(await q.step()).toBe(false);
    expect(q.numWaiting).toBe(1);
    pool.release(held[0]!);
    expect(await q.step()).toBe(true);
    expect((await p).promptTokens).toBe(6);
  });

  it('an abort before its step removes the request; a failed call rejects its requests with EngineStepError', async () => {
    const q = new EmbeddingQueue(fakeModel(), new BlockPool(8, 4), opts);
    const ac = new AbortController();
    const p = q.add([1, 2], ac.signal);
    ac.abort();
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    expect(q.hasWork).toBe(false);
    const pool = new BlockPool(8, 4);
    const failing = new EmbeddingQueue(fakeModel(true), pool, opts);
    const f = failing.add([1, 2]);
    expect(await failing.step()).toBe(true);
    await expect(f).rejects.toMatchObject({ code: 'E_ENGINE_STEP' });
    expect(pool.numFreeBlocks).toBe(8);
  });

  it('failAll rejects what waits', async () => {
    const q = new EmbeddingQueue(fakeModel(), new BlockPool(8, 4), opts);
    const p = q.add([1]);
    q.failAll();
    await expect(p).rejects.toMatchObject({ code: 'E_ENGINE_DISPOSED' });
  });

  it('maxPromptTokens is the least of context, step budget and pool', () => {
    expect(new EmbeddingQueue(fakeModel(), new BlockPool(64, 4), opts).maxPromptTokens).toBe(16);
    expect(new EmbeddingQueue(fakeModel(), new BlockPool(2, 4), opts).maxPromptTokens).toBe(8);
  });
});

describe('poolingOf', () => {
  it("reads a sentence-transformers pooling config (modules.json's Pooling path first), else 'last'", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-pooling-'));
    const spec = { path: dir, format: 'safetensors' as const };
    expect(poolingOf(spec)).toBe('last');
    mkdirSync(path.join(dir, '1_Pooling'));
    writeFileSync(path.join(dir, '1_Pooling', 'config.json'), JSON.stringify({ pooling_mode_mean_tokens: true }));
    expect(poolingOf(spec)).toBe('mean');
    mkdirSync(path.join(dir, 'pool2'));
    writeFileSync(path.join(dir, 'pool2', 'config.json'), JSON.stringify({ pooling_mode_lasttoken: true }));
    writeFileSync(
      path.join(dir, 'modules.json'),
      JSON.stringify([{ idx: 1, path: 'pool2', type: 'sentence_transformers.models.Pooling' }]),
    );
    expect(poolingOf(spec)).toBe('last');
  });
});
