/**
 * LoRA adapters through LLMEngine on stories260K-hf with random PEFT adapters (the project's writer):
 * greedy output with an adapter equals the merged model's; concurrent requests on different adapters
 * and the base equal each alone; the prefix cache is never shared across adapters; an unknown adapter,
 * a misshapen one and a full pool behave as specified (typed errors; eviction of idle adapters only;
 * a request for a fourth adapter waits for a slot instead of failing anyone).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LLMEngine, type LLMEngineOptions } from '../../packages/engine/src/llm-engine.js';
import { AdapterMismatchError, AdapterNotFoundError } from '../../packages/engine/src/lora/errors.js';
import { mergeAdapter } from '../../packages/engine/src/model-loader/writers/peft-merge.js';
import { writeRandomAdapter } from '../../packages/engine/src/model-loader/writers/peft-writer.js';
import type { SamplingParams } from '../../packages/engine/src/sampling-params.js';
import { collect } from '../helpers/engine-suite.js';
import { STORIES260K_HF_CONFIG, describeWithModels, models } from '../helpers/models.js';

const greedy: SamplingParams = { temperature: 0, maxTokens: 24, ignoreEos: true };
const base: LLMEngineOptions = {
  model: models.stories260KHf,
  numThreads: 1,
  device: 'cpu',
  guidedDecoding: false,
  maxLoras: 2,
  maxLoraRank: 8,
};
const hfConfig = STORIES260K_HF_CONFIG;

async function text(engine: LLMEngine, prompt: string, adapter?: string): Promise<number[]> {
  return (await collect(engine.generate(prompt, greedy, adapter ? { adapter } : {})))[0]!.tokenIds;
}

describeWithModels('LLMEngine with LoRA adapters: stories260K-hf', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flotilla-engine-lora-'));
  const ad = (name: string) => path.join(dir, name);
  beforeAll(async () => {
    for (const [i, name] of ['a0', 'a1', 'a2', 'a3'].entries()) {
      mkdirSync(ad(name));
      await writeRandomAdapter(ad(name), hfConfig, { rank: 8, seed: 100 + i, std: 0.1 });
    }
    mkdirSync(ad('wide'));
    await writeRandomAdapter(
      ad('wide'),
      { ...hfConfig, hiddenDim: 176 },
      { rank: 4, seed: 7, targetModules: ['down_proj'] },
    );
    mkdirSync(ad('merged'));
    await mergeAdapter(models.stories260KHf, ad('a0'), ad('merged'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('greedy output with an adapter equals the merged model, and differs from the base', async () => {
    await using engine = await LLMEngine.create(base);
    await engine.loadAdapter('a0', ad('a0'));
    await using merged = await LLMEngine.create({
      model: ad('merged'),
      numThreads: 1,
      device: 'cpu',
      guidedDecoding: false,
    });
    const prompt = 'Once upon a time, there was a little dog';
    const withAdapter = await text(engine, prompt, 'a0');
    expect(withAdapter).toEqual(await text(merged, prompt));
    expect(withAdapter).not.toEqual(await text(engine, prompt));
  });

  it('concurrent requests on two adapters and the base equal each alone', async () => {
    await using engine = await LLMEngine.create(base);
    await engine.loadAdapter('a0', ad('a0'));
    await engine.loadAdapter('a1', ad('a1'));
    const jobs = [
      ['Lily and Tom went to the park', 'a0'],
      ['Lily and Tom went to the park', 'a1'],
      ['Lily and Tom went to the park', undefined],
      ['One day, a big bird', 'a1'],
      ['Sara had a red ball', 'a0'],
      ['Tim saw a cat on the', undefined],
    ] as const;
    const alone: number[][] = [];
    for (const [p, a] of jobs) alone.push(await text(engine, p, a));
    const together = await Promise.all(jobs.map(([p, a]) => text(engine, p, a)));
    expect(together).toEqual(alone);
    expect(new Set(alone.slice(0, 3).map((t) => t.join())).size).toBe(3);
  });

  it('speculative decoding (n-gram) verifies with the adapter: the same greedy output as without', async () => {
    await using plain = await LLMEngine.create(base);
    await plain.loadAdapter('a0', ad('a0'));
    await using spec = await LLMEngine.create({ ...base, speculative: { method: 'ngram', k: 3 } });
    await spec.loadAdapter('a0', ad('a0'));
    const prompt = 'Tom had a ball. Tom had a ball. Tom had a ball. Tom';
    expect(await text(spec, prompt, 'a0')).toEqual(await text(plain, prompt, 'a0'));
    expect(await text(spec, prompt)).toEqual(await text(plain, prompt));
  });

  it('the prefix cache is keyed by adapter: no KV shared across adapters or with the base', async () => {
    await using engine = await LLMEngine.create(base);
    await engine.loadAdapter('a0', ad('a0'));
    await engine.loadAdapter('a1', ad('a1'));
    const cached: number[] = [];
    engine.onEvent((e) => e.type === 'request-finished' && cached.push(e.cachedPromptTokens));
    const prompt = 'Once upon a time, there was a little dog who liked to run in the park with his friends every day.';
    const first = await text(engine, prompt, 'a0');
    await text(engine, prompt, 'a1');
    await text(engine, prompt);
    const again = await text(engine, prompt, 'a0');
    expect(cached[0]).toBe(0);
    expect(cached[1]).toBe(0); // a1 finds nothing of a0's
    expect(cached[2]).toBe(0); // nor does the base
    expect(cached[3]).toBeGreaterThanOrEqual(16); // a0 finds its own blocks again
    expect(again).toEqual(first);
  });

  it('an unknown adapter is AdapterNotFoundError; a misshapen one AdapterMismatchError naming the tensor', async () => {
    await using engine = await LLMEngine.create(base);
    expect(() => engine.generate('Hi', greedy, { adapter: 'nope' })).toThrow(AdapterNotFoundError);
    expect(() => engine.prepare('Hi', greedy, { adapter: 'nope' })).toThrow(AdapterNotFoundError);
    const err = await engine.loadAdapter('wide', ad('wide')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdapterMismatchError);
    expect((err as AdapterMismatchError).tensor).toBe('base_model.model.model.layers.0.mlp.down_proj.lora_A.weight');
    expect(engine.listAdapters()).toEqual([]);
    await expect(engine.unloadAdapter('nope')).rejects.toBeInstanceOf(AdapterNotFoundError);
  });

  it('past the slot limit: idle adapters are evicted (LRU), running ones never; a request waits for a slot', async () => {
    const prompt = 'Ben wanted to play';
    const want: Record<string, number[]> = {};
    {
      await using roomy = await LLMEngine.create({ ...base, maxLoras: 3 });
      for (const a of ['a0', 'a1', 'a2']) {
        await roomy.loadAdapter(a, ad(a));
        want[a] = await text(roomy, prompt, a);
      }
    }
    await using engine = await LLMEngine.create(base);
    await engine.loadAdapter('a0', ad('a0'));
    await engine.loadAdapter('a1', ad('a1'));
    const finished: string[] = [];
    const run = (a: string, maxTokens: number) =>
      collect(engine.generate(prompt, { ...greedy, maxTokens }, { adapter: a })).then((c) => {
        finished.push(a);
        return c[0]!.tokenIds;
      });
    const longA0 = run('a0', 160); // pins a0's slot
    await engine.loadAdapter('a2', ad('a2')); // a1 is idle: evicted, not a0
    const resident = () => Object.fromEntries(engine.listAdapters().map((a) => [a.name, a.resident]));
    expect(resident()).toEqual({ a0: true, a1: false, a2: true });
    const longA2 = run('a2', 120); // both slots pinned now
    const shortA1 = run('a1', 24); // waits for a slot instead of failing or evicting a running adapter
    const [t0, t2, t1] = await Promise.all([longA0, longA2, shortA1]);
    expect(finished[0]).not.toBe('a1');
    expect(t0.slice(0, 24)).toEqual(want.a0);
    expect(t2.slice(0, 24)).toEqual(want.a2);
    expect(t1).toEqual(want.a1);
    expect(engine.adapters!.stats.evictions).toBe(2);
    // unloading an adapter in use: the running request finishes with it, new ones are refused
    const running = collect(engine.generate('Tim saw a cat', greedy, { adapter: 'a1' }));
    await engine.unloadAdapter('a1');
    expect(() => engine.generate('Tim saw a cat', greedy, { adapter: 'a1' })).toThrow(AdapterNotFoundError);
    expect((await running)[0]!.tokenIds).toHaveLength(greedy.maxTokens!);
    const st = engine.stats();
    expect(st.freeBlocks).toBe(st.numBlocks);
  });
});
