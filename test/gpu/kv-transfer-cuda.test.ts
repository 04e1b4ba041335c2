/**
 * KV export/import on the CUDA backend (opt-in: npm run test:gpu on a GPU machine): a prompt prefilled
 * by one CUDA engine and decoded by another gives one CUDA engine's greedy output, and a payload from
 * the CPU backend's pool imports into a CUDA pool of the same model and dtype (the fingerprint is taken
 * before either backend rewrites the weights). Written without a GPU at hand: compiled, not yet run.
 */
import { describe, expect, it } from 'vitest';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import { collect, run } from '../helpers/engine-suite.js';
import { models } from '../helpers/models.js';

const prompt =
  'Once upon a time, there was a little dog. He liked to run in the park with his friend Tom. One day, Tom saw a big red ball.';
const make = (device: 'cuda' | 'cpu') =>
  LLMEngine.create({ model: models.stories260K, device, numBlocks: 256, guidedDecoding: false, kvDtype: 'f32' });

describe('KV transfer on CUDA', () => {
  it('prefill on one CUDA engine, decode on another: greedy output equals one engine', async () => {
    await using single = await make('cuda');
    await using a = await make('cuda');
    await using b = await make('cuda');
    const params = { temperature: 0, maxTokens: 40, ignoreEos: true };
    const ref = await run(single, prompt, params);
    const h = await a.prefill(prompt, params);
    const rest = (await collect(b.generateFromHandoff(h)))[0]!;
    expect([h.firstTokenId, ...rest.tokenIds]).toEqual(ref.tokenIds);
  });

  it('a CPU payload imports into a CUDA pool of the same model', async () => {
    await using cpu = await make('cpu');
    await using gpu = await make('cuda');
    const h = await cpu.prefill(prompt, { temperature: 0, maxTokens: 20, ignoreEos: true });
    const rest = (await collect(gpu.generateFromHandoff(h)))[0]!;
    expect(rest.tokenIds.length).toBe(19);
    expect(rest.finishReason).toBe('length');
  });
});
