/**
 * kvDtype 'auto' (the default, vLLM's "the model's dtype"): an f16 pool for a model held in f16, f32
 * for f32, bf16 and quantized ones; explicit choices win; the pool's block count follows its element
 * size; and greedy output over an f16 pool stays the goldens' on stories260K held in f16.
 */
import { afterAll, expect, it } from 'vitest';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import type { NativeModel } from '../../packages/engine/src/native/native-types.js';
import { describeWithModels, models } from '../helpers/models.js';
import { generate, goldens, llama2cManifest, Seq } from './native-harness.js';

describeWithModels('native kvDtype', () => {
  const binding = loadNative();
  const opened: NativeModel[] = [];
  const load = async (extra: object) => {
    const m = await binding.loadModel({ ...llama2cManifest(models.stories260K), kvCacheBytes: 8 << 20, ...extra });
    opened.push(m);
    return m;
  };
  afterAll(() => {
    for (const m of opened) m.dispose();
  });

  it("'auto' follows the weights held in memory; explicit choices win", async () => {
    expect((await load({})).kvDtype).toBe('f32');
    expect((await load({ weightFormat: 'f16' })).kvDtype).toBe('f16');
    expect((await load({ weightFormat: 'bf16' })).kvDtype).toBe('f32');
    expect((await load({ weightFormat: 'int8' })).kvDtype).toBe('f32');
    expect((await load({ weightFormat: 'f16', kvDtype: 'f32' })).kvDtype).toBe('f32');
    expect((await load({ kvDtype: 'f16' })).kvDtype).toBe('f16');
    await expect(load({ kvDtype: 'f8' })).rejects.toMatchObject({ code: 'E_DTYPE' });
  });

  it('an f16 pool holds twice the blocks in the same bytes, and greedy decoding over it keeps the goldens', async () => {
    const f32 = await load({ weightFormat: 'f16', kvDtype: 'f32' });
    const f16 = await load({ weightFormat: 'f16' });
    expect(Math.floor(f16.numBlocks / 2)).toBe(f32.numBlocks); // floor(bytes / half a block) is 2x floor(bytes / a block), or one more
    const seq = new Seq([1]);
    await generate(f16, [seq], 48);
    expect(seq.tokens).toEqual(goldens('stories260K').greedy_from_bos_48);
  });
});
