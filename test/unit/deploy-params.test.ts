/** OpenAI and TGI request bodies → the engine's SamplingParams, and the errors naming each field. */
import { describe, expect, it } from 'vitest';
import {
  parseChatRequest,
  parseCompletionRequest,
  parseTgiRequest,
  resolveLimits,
  type InvalidParameterError,
} from '../../packages/deployments/src/index.js';

const limits = resolveLimits({ maxN: 4, maxStop: 2 }, 512);
const paramOf = (fn: () => unknown): string | null | undefined => {
  try {
    fn();
  } catch (e) {
    return (e as InvalidParameterError).param;
  }
  return undefined;
};

describe('OpenAI completions', () => {
  it('maps every sampling field', () => {
    const r = parseCompletionRequest(
      {
        model: 'm',
        prompt: 'hi',
        max_tokens: 7,
        temperature: 0.5,
        top_p: 0.9,
        n: 2,
        stop: 'x',
        seed: 3,
        logprobs: 2,
        presence_penalty: 0.1,
        frequency_penalty: -0.2,
        top_k: 5,
        min_p: 0.1,
        repetition_penalty: 1.1,
        ignore_eos: true,
        user: 'u',
      },
      limits,
    );
    expect(r.spec.prompt).toEqual({ text: 'hi' });
    expect(r.spec.params).toEqual({
      maxTokens: 7,
      temperature: 0.5,
      topP: 0.9,
      n: 2,
      stop: ['x'],
      seed: 3,
      logprobs: 2,
      presencePenalty: 0.1,
      frequencyPenalty: -0.2,
      topK: 5,
      minP: 0.1,
      repetitionPenalty: 1.1,
      ignoreEos: true,
    });
    expect(r.spec.defaultMaxTokens).toBe(16);
    expect(r.logprobs).toBe(2);
  });

  it('takes token-id prompts and null as absent', () => {
    const r = parseCompletionRequest(
      { prompt: [1, 2, 3], temperature: null, stream: true, stream_options: { include_usage: true } },
      limits,
    );
    expect(r.spec.prompt).toEqual({ tokenIds: [1, 2, 3] });
    expect(r.spec.params.temperature).toBeUndefined();
    expect(r.includeUsage).toBe(true);
  });

  it('passes logit_bias on to the engine, which checks it against the vocabulary', () => {
    expect(
      parseCompletionRequest({ prompt: 'x', logit_bias: { 7: -100, '9': 5 } }, limits).spec.params.logitBias,
    ).toEqual({ 7: -100, '9': 5 });
    expect(parseCompletionRequest({ prompt: 'x', logit_bias: null }, limits).spec.params.logitBias).toBeUndefined();
    expect(
      parseChatRequest({ messages: [{ role: 'user', content: 'hi' }], logit_bias: { 3: 1 } }, limits).spec.params
        .logitBias,
    ).toEqual({ 3: 1 });
  });

  it('names the field at fault', () => {
    expect(paramOf(() => parseCompletionRequest({ prompt: 'x', temperature: 2.5 }, limits))).toBe('temperature');
    expect(paramOf(() => parseCompletionRequest({ prompt: 'x', top_p: 0 }, limits))).toBe('top_p');
    expect(paramOf(() => parseCompletionRequest({ prompt: 'x', n: 1.5 }, limits))).toBe('n');
    expect(paramOf(() => parseCompletionRequest({ prompt: 'x', stop: ['a', 'b', 'c'] }, limits))).toBe('stop');
    expect(paramOf(() => parseCompletionRequest({ prompt: 'x', best_of: 3 }, limits))).toBe('best_of');
    expect(paramOf(() => parseCompletionRequest({ prompt: ['a', 'b'] }, limits))).toBe('prompt');
    expect(paramOf(() => parseCompletionRequest({ prompt: 'x', nope: 1 }, limits))).toBe('nope');
  });
});

describe('OpenAI chat', () => {
  it('maps messages, max_completion_tokens and logprobs', () => {
    const r = parseChatRequest(
      { messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 9, logprobs: true, top_logprobs: 3 },
      limits,
    );
    expect(r.spec.prompt).toEqual({ messages: [{ role: 'user', content: 'hi' }] });
    expect(r.spec.params).toMatchObject({ maxTokens: 9, logprobs: 3 });
    expect(r.spec.names.maxTokens).toBe('max_completion_tokens');
    expect(r.spec.defaultMaxTokens).toBeUndefined();
  });

  it('names message fields', () => {
    expect(paramOf(() => parseChatRequest({ messages: [{ role: 'user' }] }, limits))).toBe('messages[0].content');
    expect(paramOf(() => parseChatRequest({ messages: [{ role: 'user', content: 'x', extra: 1 }] }, limits))).toBe(
      'messages[0].extra',
    );
    expect(
      paramOf(() =>
        parseChatRequest({ messages: [{ role: 'user', content: 'x' }], response_format: { type: 'xml' } }, limits),
      ),
    ).toBe('response_format.type');
  });
});

describe('TGI', () => {
  it('is greedy unless sampling is asked for', () => {
    expect(parseTgiRequest({ inputs: 'x' }, limits).spec.params.temperature).toBe(0);
    expect(
      parseTgiRequest({ inputs: 'x', parameters: { do_sample: true } }, limits).spec.params.temperature,
    ).toBeUndefined();
    expect(parseTgiRequest({ inputs: 'x', parameters: { temperature: 0.7 } }, limits).spec.params.temperature).toBe(
      0.7,
    );
  });

  it('maps parameters and names them with their prefix', () => {
    const r = parseTgiRequest(
      { inputs: 'x', parameters: { max_new_tokens: 5, stop: ['a'], seed: 1, details: true, top_n_tokens: 2 } },
      limits,
    );
    expect(r.spec.params).toMatchObject({ maxTokens: 5, stop: ['a'], seed: 1, logprobs: 2 });
    expect(r.details).toBe(true);
    expect(paramOf(() => parseTgiRequest({ inputs: 'x', parameters: { top_k: 0 } }, limits))).toBe('parameters.top_k');
    expect(paramOf(() => parseTgiRequest({ inputs: '' }, limits))).toBe('inputs');
  });
});
