/**
 * LLMEngine.prepare over a fake model: the one place a request's input is checked (prompt, sampling
 * parameters against the context and vocabulary, KV capacity), each error naming its parameter; what it
 * returns starts with generate() unchanged, and only on the engine that prepared it.
 */
import { describe, expect, it } from 'vitest';
import {
  ContextLengthError,
  InvalidPromptError,
  KvCapacityError,
  SamplingParamsError,
} from '../../packages/engine/src/errors.js';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import { checkSamplingParams } from '../../packages/engine/src/sampling-params.js';
import { collect } from '../helpers/engine-suite.js';
import { makeFakeModel } from '../helpers/fake-model.js';

function thrown(fn: () => unknown): Error & { code?: string; param?: string; problem?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('did not throw');
}

describe('LLMEngine.prepare', () => {
  it('tokenizes, resolves the parameters and keeps the prompt text', async () => {
    await using engine = await LLMEngine.create({ model: makeFakeModel({ maxSeqLen: 64 }) });
    const p = engine.prepare('the cat', { maxTokens: 4, temperature: 0 });
    expect(p.tokenIds).toEqual(engine.tokenizer.encode('the cat'));
    expect(p.params).toMatchObject({ maxTokens: 4, temperature: 0, n: 1, stop: [] });
    expect(p.promptText).toBe('the cat');
    // Token ids: the text is decoded when asked for; no maxTokens: the room left, or defaultMaxTokens under it.
    const ids = engine.prepare({ tokenIds: p.tokenIds }, {});
    expect(ids.promptText).toBe(engine.tokenizer.decode(p.tokenIds));
    expect(ids.params.maxTokens).toBe(64 - p.tokenIds.length);
    expect(engine.prepare('the cat', {}, { defaultMaxTokens: 5 }).params.maxTokens).toBe(5);
    expect(engine.prepare('the cat', {}, { defaultMaxTokens: 1000 }).params.maxTokens).toBe(64 - p.tokenIds.length);
    // Chat: the rendered template is the text.
    const chat = engine.prepare({ messages: [{ role: 'user', content: 'hi' }] });
    expect(chat.promptText).toContain('hi');
  });

  it('names the parameter at fault, as the SamplingParams field or prompt', async () => {
    await using engine = await LLMEngine.create({ model: makeFakeModel({ maxSeqLen: 64, numBlocks: 256 }) });
    const long = thrown(() => engine.prepare('the cat', { maxTokens: 100 }));
    expect(long).toBeInstanceOf(ContextLengthError);
    expect([long.code, long.param]).toEqual(['E_CONTEXT_LENGTH', 'maxTokens']);
    expect(long.message).toBe(`maxTokens: ${long.problem}`);
    expect(long.problem).not.toContain('maxTokens'); // an API layer puts its own name first
    const full = thrown(() => engine.prepare({ tokenIds: new Array(64).fill(5) }));
    expect([full.code, full.param]).toEqual(['E_CONTEXT_LENGTH', 'prompt']);
    const topP = thrown(() => engine.prepare('x', { topP: 0 }));
    expect(topP).toBeInstanceOf(SamplingParamsError);
    expect([topP.param, topP.problem]).toEqual(['topP', 'must be > 0 and <= 1, got 0']);
    expect(thrown(() => engine.prepare('x', { stopTokenIds: [64] })).param).toBe('stopTokenIds');
    const vocab = thrown(() => engine.prepare({ tokenIds: [1, 64] }));
    expect(vocab).toBeInstanceOf(InvalidPromptError);
    expect(vocab.param).toBe('prompt');
    expect(vocab.message).toBe('prompt: token 1 (64) is outside the vocabulary [0, 64)');
    expect(thrown(() => engine.prepare({ tokenIds: [] })).message).toBe('prompt: is empty (no tokens)');
  });

  it('refuses a request that could never fit the KV pool', async () => {
    await using engine = await LLMEngine.create({ model: makeFakeModel({ numBlocks: 2, blockSize: 16 }) });
    const kv = thrown(() => engine.prepare('the cat', { maxTokens: 40 }));
    expect(kv).toBeInstanceOf(KvCapacityError);
    expect([kv.code, kv.param]).toEqual(['E_KV_CAPACITY', 'maxTokens']);
  });

  it('generate() starts a prepared request as it would the prompt, and only on its own engine', async () => {
    await using engine = await LLMEngine.create({ model: makeFakeModel() });
    await using other = await LLMEngine.create({ model: makeFakeModel() });
    const params = { maxTokens: 6, temperature: 0, ignoreEos: true };
    const direct = await collect(engine.generate('the cat sat', params));
    const prepared = engine.prepare('the cat sat', params);
    const started = await collect(engine.generate(prepared, { requestId: 'p1' }));
    expect(started.map((s) => [s.tokenIds, s.text, s.finishReason])).toEqual(
      direct.map((s) => [s.tokenIds, s.text, s.finishReason]),
    );
    expect(started[0]!.tokenIds).toHaveLength(6);
    expect(thrown(() => other.generate(prepared))).toBeInstanceOf(InvalidPromptError);
    expect(engine.debugCounts()).toMatchObject({ requests: 0, samples: 0 });
  });
});

describe('checkSamplingParams (no model)', () => {
  it('checks types and ranges but not the context or the vocabulary', () => {
    expect(() => checkSamplingParams({ maxTokens: 1e9, stopTokenIds: [1e6], logitBias: { 99999: 1 } })).not.toThrow();
    expect(thrown(() => checkSamplingParams({ n: 1.5 })).param).toBe('n');
    expect(thrown(() => checkSamplingParams({ maxTokens: 0 })).message).toBe('maxTokens: must be >= 1, got 0');
    expect(thrown(() => checkSamplingParams({ stopTokenIds: [-1] })).message).toBe(
      'stopTokenIds: -1 is not a token id (a non-negative integer)',
    );
    expect(thrown(() => checkSamplingParams({ logitBias: { x: 1 } })).message).toBe(
      'logitBias: key "x" is not a token id',
    );
    expect(thrown(() => checkSamplingParams({ minTokens: 5, maxTokens: 4 })).param).toBe('minTokens');
  });
});
