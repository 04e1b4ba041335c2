import { describe, expect, it } from 'vitest';
import { ContextLengthError, SamplingParamsError } from '../../packages/engine/src/errors.js';
import { resolveSamplingParams } from '../../packages/engine/src/sampling-params.js';

const ctx = { maxModelLen: 512, vocabSize: 512, promptLen: 10 };

function fails(input: unknown, param: string, code = 'E_SAMPLING_PARAMS') {
  try {
    resolveSamplingParams(input, ctx);
  } catch (err) {
    expect(err).toBeInstanceOf(SamplingParamsError);
    expect((err as SamplingParamsError).code).toBe(code);
    expect((err as SamplingParamsError).param).toBe(param);
    return;
  }
  throw new Error(`accepted ${JSON.stringify(input)}`);
}

describe('resolveSamplingParams', () => {
  it('fills defaults (maxTokens: the rest of the context)', () => {
    const p = resolveSamplingParams(undefined, ctx);
    expect(p).toMatchObject({
      temperature: 1,
      topP: 1,
      topK: 0,
      minP: 0,
      n: 1,
      maxTokens: 502,
      minTokens: 0,
      stop: [],
      stopTokenIds: [],
      ignoreEos: false,
    });
    expect(p.seed).toBeUndefined();
    expect(p.logprobs).toBeUndefined();
    expect(resolveSamplingParams({ stop: 'x' }, ctx).stop).toEqual(['x']);
  });

  it('resolves logitBias to (id, bias) pairs in id order', () => {
    expect(resolveSamplingParams({}, ctx).logitBias).toEqual([]);
    expect(resolveSamplingParams({ logitBias: { 9: 1.5, '0': -100, 511: 100 } }, ctx).logitBias).toEqual([
      [0, -100],
      [9, 1.5],
      [511, 100],
    ]);
  });

  it('accepts edge values', () => {
    expect(() =>
      resolveSamplingParams(
        { temperature: 0, topP: 1, topK: -1, minP: 1, maxTokens: 502, seed: 2 ** 32 - 1, logprobs: 20 },
        ctx,
      ),
    ).not.toThrow();
  });

  it.each([
    [{ temperature: -0.1 }, 'temperature'],
    [{ temperature: Number.NaN }, 'temperature'],
    [{ temperature: '1' }, 'temperature'],
    [{ topP: 0 }, 'topP'],
    [{ topP: 1.01 }, 'topP'],
    [{ topK: 1.5 }, 'topK'],
    [{ topK: -2 }, 'topK'],
    [{ minP: 2 }, 'minP'],
    [{ maxTokens: 0 }, 'maxTokens'],
    [{ n: 0 }, 'n'],
    [{ minTokens: 5, maxTokens: 4 }, 'minTokens'],
    [{ seed: -1 }, 'seed'],
    [{ logprobs: 21 }, 'logprobs'],
    [{ stop: [1] }, 'stop'],
    [{ stop: [''] }, 'stop'],
    [{ stopTokenIds: [512] }, 'stopTokenIds'],
    [{ ignoreEos: 'yes' }, 'ignoreEos'],
    [{ repetitionPenalty: 0 }, 'repetitionPenalty'],
    [{ presencePenalty: 3 }, 'presencePenalty'],
    [{ logitBias: [1, 2] }, 'logitBias'],
    [{ logitBias: { x: 1 } }, 'logitBias'],
    [{ logitBias: { '-1': 1 } }, 'logitBias'],
    [{ logitBias: { '01': 1 } }, 'logitBias'],
    [{ logitBias: { 512: 1 } }, 'logitBias'],
    [{ logitBias: { 5: 100.5 } }, 'logitBias'],
    [{ logitBias: { 5: '1' } }, 'logitBias'],
    [{ top_p: 0.5 }, 'top_p'],
    [[1], 'samplingParams'],
  ])('rejects %j naming %s', (input, param) => fails(input, param));

  it('rejects a prompt plus maxTokens beyond the context', () => {
    fails({ maxTokens: 503 }, 'maxTokens', 'E_CONTEXT_LENGTH');
    expect(() => resolveSamplingParams({}, { ...ctx, promptLen: 512 })).toThrow(ContextLengthError);
  });
});
