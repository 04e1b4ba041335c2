import { describe, expect, it } from 'vitest';
import { RANDOM_MODEL_CONFIG } from '@flotilla/deployments';
import { describeBenchModel, resolveBenchModel } from '../../bench/http-llm/bench-model.js';
import { MODEL_PRESETS } from '../../packages/engine/src/model-loader/index.js';

describe('bench/http-llm --model', () => {
  it('names the model and its size in the table header', () => {
    const m110 = {
      name: '110m',
      path: '/m/model.bin',
      config: MODEL_PRESETS['110m'],
      randomWeights: true,
      defaultTokens: 32,
    };
    expect(describeBenchModel(m110)).toBe('model 110m (random weights, 110M params: dim 768, 12 layers, vocab 32000)');
    const tiny = {
      name: 'tiny',
      path: '/t/model.bin',
      config: RANDOM_MODEL_CONFIG,
      randomWeights: true,
      defaultTokens: 64,
    };
    expect(describeBenchModel(tiny)).toBe('model tiny (random weights, 0.9M params: dim 128, 4 layers, vocab 512)');
    expect(describeBenchModel({ name: 'x', path: '/models/x.gguf', randomWeights: false, defaultTokens: 32 })).toBe(
      'model /models/x.gguf',
    );
  });

  it('takes a path to an existing model, and refuses anything else', async () => {
    const here = await resolveBenchModel(import.meta.dirname, '/repo');
    expect(here).toMatchObject({ path: import.meta.dirname, randomWeights: false, defaultTokens: 32 });
    await expect(resolveBenchModel('/no/such/model.bin', '/repo')).rejects.toThrow(
      /--model must be 110m, tiny or an existing model/,
    );
  });
});
