/**
 * LLMEngine over a fake model (no addon needed): scheduling, block tables, prefix hits, preemption,
 * streaming, stops and aborts end to end. test/integration/llm-engine-*.test.ts run the same suite on stories260K.
 */
import { describe, expect, it } from 'vitest';
import { EngineDisposedError, EngineStepError } from '../../packages/engine/src/errors.js';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import { collect, engineSuite } from '../helpers/engine-suite.js';
import { makeFakeModel } from '../helpers/fake-model.js';

const prompts = [
  'the cat sat on the mat',
  'a dog ran.',
  'once upon a time there was a fox',
  'hello',
  'zebra crossing at night',
  'quiet\nlines',
];

describe('LLMEngine (fake model)', () => {
  engineSuite(async (o = {}) => {
    const { numBlocks, ...rest } = o;
    return LLMEngine.create({ model: makeFakeModel({ numBlocks: numBlocks ?? 256 }), ...rest });
  }, prompts);

  it('batches concurrent requests into one step', async () => {
    const fake = makeFakeModel();
    await using engine = await LLMEngine.create({ model: fake });
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        collect(engine.generate(prompts[i % prompts.length]!, { maxTokens: 10, ignoreEos: true })),
      ),
    );
    expect(fake.maxSeqsInStep).toBe(10);
    expect(fake.steps).toBeLessThan(20);
  });

  it('fails in-flight requests with EngineStepError when a step throws, and keeps serving', async () => {
    let fail = true;
    const fake = makeFakeModel({ failWhen: () => fail });
    await using engine = await LLMEngine.create({ model: fake });
    await expect(collect(engine.generate('hello', { maxTokens: 3 }))).rejects.toBeInstanceOf(EngineStepError);
    fail = false;
    expect((await collect(engine.generate('hello', { maxTokens: 3, ignoreEos: true })))[0]!.tokenIds.length).toBe(3);
    expect(engine.stats().freeBlocks).toBe(engine.stats().numBlocks);
  });

  it('dispose() ends in-flight requests with EngineDisposedError and refuses new ones', async () => {
    const engine = await LLMEngine.create({ model: makeFakeModel() });
    const pending = collect(engine.generate('hello', { maxTokens: 300, ignoreEos: true }));
    pending.catch(() => {});
    await new Promise((r) => setTimeout(r, 5));
    await engine.dispose();
    await expect(pending).rejects.toBeInstanceOf(EngineDisposedError);
    expect(() => engine.generate('x')).toThrow(EngineDisposedError);
  });

  it('keeps the event loop free while it works and goes idle after', async () => {
    await using engine = await LLMEngine.create({ model: makeFakeModel() });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await collect(engine.generate('hello', { maxTokens: 200, ignoreEos: true }));
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(0);
    const steps = engine.stats().steps;
    await new Promise((r) => setTimeout(r, 20));
    expect(engine.stats().steps).toBe(steps); // no steps while idle
    expect(engine.stats().generationTokens).toBe(200);
  });
});
