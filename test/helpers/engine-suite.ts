/**
 * LLMEngine behaviour shared by the fake-model unit test and the stories260K integration tests:
 * the same assertions, whatever model is underneath.
 */
import { getEventListeners, setMaxListeners } from 'node:events';
import { expect, it } from 'vitest';
import {
  ContextLengthError,
  DuplicateRequestError,
  InvalidPromptError,
  SamplingParamsError,
} from '../../packages/engine/src/errors.js';
import type { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import type { RequestOutput } from '../../packages/engine/src/request-output.js';
import type { SamplingParams } from '../../packages/engine/src/sampling-params.js';
import type { PromptInput } from '../../packages/engine/src/prompt.js';

export interface EngineFactoryOptions {
  numBlocks?: number;
  maxNumSeqs?: number;
  maxNumBatchedTokens?: number;
  enablePrefixCaching?: boolean;
}
export type EngineFactory = (opts?: EngineFactoryOptions) => Promise<LLMEngine>;

export interface Collected {
  tokenIds: number[];
  text: string;
  streamed: string;
  finishReason: string | null;
  stopReason: number | string | null;
  outputs: RequestOutput[];
}

/** Drains a request, per sample index. */
export async function collect(stream: AsyncIterable<RequestOutput>): Promise<Collected[]> {
  const bySample: Collected[] = [];
  for await (const out of stream) {
    const c = (bySample[out.index] ??= {
      tokenIds: [],
      text: '',
      streamed: '',
      finishReason: null,
      stopReason: null,
      outputs: [],
    });
    c.tokenIds.push(...out.tokenIds);
    c.streamed += out.text;
    c.text = out.cumulativeText;
    c.finishReason = out.finishReason;
    c.stopReason = out.stopReason;
    c.outputs.push(out);
  }
  return bySample;
}

export async function run(engine: LLMEngine, prompt: PromptInput, params: SamplingParams = {}): Promise<Collected> {
  return (await collect(engine.generate(prompt, params)))[0]!;
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

function expectClean(engine: LLMEngine): void {
  const st = engine.stats();
  expect(st.freeBlocks).toBe(st.numBlocks);
  expect([st.running, st.waiting, st.requests]).toEqual([0, 0, 0]);
  expect(engine.debugCounts()).toEqual({ requests: 0, samples: 0, listeners: 0 });
}

export function engineSuite(make: EngineFactory, prompts: string[]): void {
  const greedy: SamplingParams = { temperature: 0, maxTokens: 40, ignoreEos: true };

  it('greedy output is identical alone, among 32 staggered requests, after preemption and with a prefix hit', async () => {
    // Two long prompts (several full blocks) so that repeats among the 32 hit the prefix cache.
    const mixed = [...prompts, prompts[0]!.repeat(3), prompts[1]!.repeat(3)];
    const alone: number[][] = [];
    for (const p of mixed) {
      await using engine = await make({ enablePrefixCaching: false });
      alone.push((await run(engine, p, greedy)).tokenIds);
    }
    {
      await using engine = await make();
      // Staggered: the first 8 (one per prompt) start at once, the rest after the first step and a few ms apart,
      // so repeats of the long prompts find their blocks cached while the first copies still run.
      let firstStep!: () => void;
      const stepped = new Promise<void>((r) => {
        firstStep = r;
      });
      const runs = Array.from({ length: 32 }, async (_, i) => {
        if (i >= mixed.length) {
          await stepped;
          await tick(i % 5);
        }
        const stream = engine.generate(mixed[i % mixed.length]!, greedy);
        const ids: number[] = [];
        for await (const out of stream) {
          ids.push(...out.tokenIds);
          firstStep();
        }
        return ids;
      });
      const got = await Promise.all(runs);
      got.forEach((ids, i) => expect(ids).toEqual(alone[i % mixed.length]));
      expect(engine.stats().prefixHitTokens).toBeGreaterThan(0); // repeated prompts hit
      expectClean(engine);
    }
    {
      await using engine = await make({ numBlocks: 12 }); // 16 requests of ~4 blocks: preemption is certain
      const got = await Promise.all(
        Array.from({ length: 16 }, (_, i) => run(engine, prompts[i % prompts.length]!, greedy)),
      );
      got.forEach((c, i) => expect(c.tokenIds).toEqual(alone[i % prompts.length]));
      expect(engine.stats().preemptions).toBeGreaterThan(0);
      expectClean(engine);
    }
    {
      await using engine = await make();
      const long = prompts[0]!.repeat(3);
      const first = await run(engine, long, greedy);
      const hitsBefore = engine.stats().prefixHitTokens;
      const second = await run(engine, long, greedy);
      expect(engine.stats().prefixHitTokens).toBeGreaterThan(hitsBefore);
      expect(second.tokenIds).toEqual(first.tokenIds);
    }
  });

  it('streams text whose deltas add up to the final text', async () => {
    await using engine = await make();
    const c = await run(engine, prompts[0]!, greedy);
    expect(c.tokenIds.length).toBe(40);
    expect(c.streamed).toBe(c.text);
    expect(c.outputs.at(-1)!.usage.completionTokens).toBe(40);
    expect(c.finishReason).toBe('length');
  });

  it('aborting mid-stream (abort(), break, AbortSignal) frees every block at once', async () => {
    await using engine = await make();
    const long: SamplingParams = { temperature: 0, maxTokens: 200, ignoreEos: true };
    const a = engine.generate(prompts[0]!, long, { requestId: 'a' });
    let seen = 0;
    let last: RequestOutput | undefined;
    for await (const out of a) {
      last = out;
      if (++seen === 3) expect(engine.abort('a')).toBe(true);
    }
    expect(last!.finishReason).toBe('abort');
    expectClean(engine);
    for await (const _ of engine.generate(prompts[1]!, long)) break;
    expectClean(engine);
    const ctrl = new AbortController();
    const c = engine.generate(prompts[2 % prompts.length]!, long, { signal: ctrl.signal });
    // Aborted once its first output is out (a timer raced the fake model, which can finish 200 tokens first).
    const outs: RequestOutput[] = [];
    for await (const out of c) {
      outs.push(out);
      if (outs.length === 1) ctrl.abort();
    }
    expect(outs.at(-1)!.finishReason).toBe('abort');
    expect(outs.reduce((n, o) => n + o.tokenIds.length, 0)).toBeLessThan(200);
    expectClean(engine);
  });

  it('1,000 short requests leave no block, sequence or listener behind', async () => {
    await using engine = await make({ maxNumSeqs: 64 });
    const ctrl = new AbortController();
    setMaxListeners(2000, ctrl.signal); // all 1,000 share one signal here
    const all = Array.from({ length: 1000 }, (_, i) =>
      collect(
        engine.generate(
          prompts[i % prompts.length]!,
          { temperature: i % 2 ? 0 : 1, maxTokens: 1 + (i % 4) },
          { signal: ctrl.signal },
        ),
      ),
    );
    const done = await Promise.all(all);
    expect(done.every((d) => d[0]!.finishReason === 'length' || d[0]!.finishReason === 'stop')).toBe(true);
    expectClean(engine);
    expect(getEventListeners(ctrl.signal, 'abort').length).toBe(0);
    expect(engine.stats().requestsFinished).toBe(1000);
  });

  it('ends the output before a stop string', async () => {
    await using engine = await make();
    const ref = await run(engine, prompts[0]!, greedy);
    const text = ref.text;
    const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 3);
    const c = await run(engine, prompts[0]!, { ...greedy, stop: [stop] });
    expect(c.finishReason).toBe('stop');
    expect(c.stopReason).toBe(stop);
    expect(c.text).toBe(text.slice(0, text.indexOf(stop)));
    expect(c.streamed).toBe(c.text);
    const incl = await run(engine, prompts[0]!, { ...greedy, stop: [stop], includeStopStrInOutput: true });
    expect(incl.text).toBe(text.slice(0, text.indexOf(stop) + stop.length));
  });

  it("stops on the model's stop tokens unless ignoreEos, not before minTokens", async () => {
    await using engine = await make();
    const maxTokens = Math.min(400, engine.maxModelLen - 16);
    let ref: Collected | undefined;
    let prompt = '';
    for (const p of prompts) {
      const c = await run(engine, p, { temperature: 0, maxTokens });
      if (c.finishReason === 'stop') {
        ref = c;
        prompt = p;
        break;
      }
    }
    expect(ref, 'some prompt should end on a stop token').toBeDefined();
    const k = ref!.tokenIds.length;
    expect(engine.spec.stopTokenIds).toContain(ref!.stopReason);
    expect(ref!.tokenIds.at(-1)).toBe(ref!.stopReason);
    // Until minTokens are out the stop tokens cannot be sampled at all (banned in the sampler, as vLLM
    // does), so the output follows the reference up to the stop token and then takes another one.
    const min = await run(engine, prompt, { temperature: 0, maxTokens: k + 8, minTokens: k + 3 });
    expect(min.tokenIds.length).toBeGreaterThanOrEqual(k + 3);
    expect(min.tokenIds.slice(0, k - 1)).toEqual(ref!.tokenIds.slice(0, k - 1));
    expect(min.tokenIds.slice(0, k + 3).filter((t) => engine.spec.stopTokenIds.includes(t))).toEqual([]);
    const ignored = await run(engine, prompt, { temperature: 0, maxTokens: k + 5, ignoreEos: true });
    expect(ignored.tokenIds.length).toBe(k + 5);
    expect(ignored.finishReason).toBe('length');
  });

  it('applies logitBias: +100 makes a token every greedy pick, -100 keeps one out; batch neighbours are unaffected', async () => {
    await using engine = await make();
    const p: SamplingParams = { temperature: 0, maxTokens: 8, ignoreEos: true };
    const ref = await run(engine, prompts[0]!, p);
    const first = ref.tokenIds[0]!;
    const other = ref.tokenIds.find((t) => t !== first && t > 2) ?? (first === 5 ? 6 : 5);
    const [forced, banned, plain] = await Promise.all([
      run(engine, prompts[0]!, { ...p, logitBias: { [other]: 100 } }),
      run(engine, prompts[0]!, { ...p, logitBias: { [String(first)]: -100 } }),
      run(engine, prompts[0]!, p),
    ]);
    expect(forced.tokenIds).toEqual(new Array(8).fill(other));
    expect(banned.tokenIds).not.toContain(first);
    expect(plain.tokenIds).toEqual(ref.tokenIds);
    expect(() => engine.generate(prompts[0]!, { logitBias: { x: 1 } })).toThrow(/logitBias/);
    expect(() => engine.generate(prompts[0]!, { logitBias: { [first]: 101 } })).toThrow(/logitBias/);
    expectClean(engine);
  });

  it('reproduces sampled output from a seed, and n > 1 samples match single requests seeded seed + i', async () => {
    await using engine = await make();
    const p: SamplingParams = { temperature: 1, seed: 42, maxTokens: 24, ignoreEos: true };
    const a = await run(engine, prompts[0]!, p);
    const b = await run(engine, prompts[0]!, p);
    expect(b.tokenIds).toEqual(a.tokenIds);
    const c = await run(engine, prompts[0]!, { ...p, seed: 43 });
    expect(c.tokenIds).not.toEqual(a.tokenIds);
    const samples = await collect(engine.generate(prompts[0]!.repeat(2), { ...p, n: 3 }));
    expect(samples.length).toBe(3);
    for (let i = 0; i < 3; i++) {
      const single = await run(engine, prompts[0]!.repeat(2), { ...p, seed: 42 + i });
      expect(samples[i]!.tokenIds).toEqual(single.tokenIds);
      expect(samples[i]!.finishReason).toBe('length');
    }
    expectClean(engine);
  });

  it('returns logprobs and accepts token ids and chat messages', async () => {
    await using engine = await make();
    const c = await run(engine, prompts[0]!, { ...greedy, maxTokens: 5, logprobs: 2 });
    const lps = c.outputs.flatMap((o) => o.logprobs ?? []);
    expect(lps.length).toBe(5);
    expect(lps.map((l) => l.tokenId)).toEqual(c.tokenIds);
    expect(lps.every((l) => l.top.length === 2 && l.logprob <= 0)).toBe(true);
    const ids = engine.tokenizer.encode(prompts[0]!);
    expect((await run(engine, { tokenIds: ids }, greedy)).tokenIds).toEqual(
      (await run(engine, prompts[0]!, greedy)).tokenIds,
    );
    const chat = await run(engine, { messages: [{ role: 'user', content: prompts[0]! }] }, { ...greedy, maxTokens: 4 });
    expect(chat.tokenIds.length).toBe(4);
  });

  it('rejects bad requests with typed errors', async () => {
    await using engine = await make();
    expect(() => engine.generate('x', { temperature: -1 })).toThrow(SamplingParamsError);
    expect(() => engine.generate('x', { topP: 0 })).toThrow(SamplingParamsError);
    expect(() => engine.generate('x', { bogus: 1 } as SamplingParams)).toThrow(/bogus/);
    expect(() => engine.generate('x', { maxTokens: engine.maxModelLen })).toThrow(ContextLengthError);
    expect(() => engine.generate({ tokenIds: [] })).toThrow(InvalidPromptError);
    expect(() => engine.generate({ tokenIds: [1, 1e6] })).toThrow(InvalidPromptError);
    const s = engine.generate('x', { maxTokens: 2 }, { requestId: 'dup' });
    expect(() => engine.generate('y', {}, { requestId: 'dup' })).toThrow(DuplicateRequestError);
    await collect(s);
    expectClean(engine);
  });
}
