/**
 * Prefill/decode handoff between two real engines on stories260K (LLMEngine.prefill → KvHandoff →
 * LLMEngine.generateFromHandoff): the K/V exported from engine A and imported into engine B continue
 * exactly as one engine doing both (greedy and seeded sampling), mismatched engines refuse the payload
 * with typed errors, and cancelling at any point leaves every block free on both sides.
 */
import { describe, expect, it } from 'vitest';
import {
  KvBlockSizeMismatchError,
  KvDtypeMismatchError,
  KvModelMismatchError,
  KvPayloadError,
  PrefillAbortedError,
} from '../../packages/engine/src/kv-transfer/kv-errors.js';
import type { KvHandoff } from '../../packages/engine/src/kv-transfer/kv-handoff.js';
import { readKvHeader } from '../../packages/engine/src/kv-transfer/kv-payload.js';
import { LLMEngine, type LLMEngineOptions } from '../../packages/engine/src/llm-engine.js';
import type { SamplingParams } from '../../packages/engine/src/sampling-params.js';
import { tryLoadNative } from '../fixtures/native-addon.js';
import { collect, run } from '../helpers/engine-suite.js';
import { describeWithModels, models } from '../helpers/models.js';

const native = await tryLoadNative();
if (!native.binding) console.warn(`[kv-handoff-engine] skipped: ${native.reason}`);

// Three full blocks of 16 and a partial one, so the payload has several blocks and a partly filled last.
const prompt =
  'Once upon a time, there was a little dog. He liked to run in the park with his friend Tom. One day, Tom saw a big red ball under a tree and they played until the sun went down.';
const base = { model: models.stories260K, numThreads: 1, device: 'cpu' as const, guidedDecoding: false };
const make = (o: Partial<LLMEngineOptions> = {}) => LLMEngine.create({ ...base, ...o });

function expectClean(engine: LLMEngine): void {
  const st = engine.stats();
  expect(st.freeBlocks).toBe(st.numBlocks);
  expect([st.running, st.waiting, st.requests]).toEqual([0, 0, 0]);
  expect(engine.debugCounts()).toEqual({ requests: 0, samples: 0, listeners: 0 });
}

/** The prefill engine's first output followed by the decode engine's stream, as one engine's would read. */
async function splitRun(a: LLMEngine, b: LLMEngine, params: SamplingParams) {
  const handoff = await a.prefill(prompt, params);
  expectClean(a); // blocks freed once exported
  const rest = (await collect(b.generateFromHandoff(handoff)))[0]!;
  return {
    handoff,
    tokenIds: [handoff.firstTokenId, ...rest.tokenIds],
    streamed: handoff.firstOutput.text + rest.streamed,
    text: rest.text,
    finishReason: rest.finishReason,
  };
}

describeWithModels('KV handoff between engines', () => {
  describe.skipIf(!native.binding)('stories260K', () => {
    it('greedy and seeded output equal one engine doing both; the payload has the prompt in whole blocks', async () => {
      await using single = await make({ enablePrefixCaching: false });
      await using a = await make();
      await using b = await make();
      for (const params of [
        { temperature: 0, maxTokens: 40, ignoreEos: true },
        { temperature: 0.9, topP: 0.9, seed: 1234, maxTokens: 40, ignoreEos: true },
        { temperature: 1.1, topK: 20, seed: 7, maxTokens: 30, repetitionPenalty: 1.2 },
      ] satisfies SamplingParams[]) {
        const ref = await run(single, prompt, params);
        const split = await splitRun(a, b, params);
        expect(split.tokenIds).toEqual(ref.tokenIds);
        expect(split.streamed).toBe(ref.streamed);
        expect(split.text).toBe(ref.text);
        expect(split.finishReason).toBe(ref.finishReason);
        const h = readKvHeader(split.handoff.kv!);
        const promptLen = split.handoff.promptTokenIds.length;
        expect(promptLen).toBeGreaterThan(48);
        expect(h.numTokens).toBe(promptLen);
        expect(h.numBlocks).toBe(Math.ceil(promptLen / 16));
        expect(split.handoff.kv!.byteLength).toBe(64 + h.numBlocks * h.blockBytes);
        expectClean(b);
      }
    });

    it('engines that speculate (n-gram) on either side still give one engine greedy output', async () => {
      await using single = await make();
      await using a = await make({ speculative: { method: 'ngram', k: 3 } });
      await using b = await make({ speculative: { method: 'ngram', k: 3 } });
      const params = { temperature: 0, maxTokens: 40, ignoreEos: true };
      const ref = await run(single, prompt, params);
      const split = await splitRun(a, b, params);
      expect(split.tokenIds).toEqual(ref.tokenIds);
      expect(b.stats().speculative?.draftTokens ?? 0).toBeGreaterThan(0);
      expectClean(b);
    });

    it('an unseeded request carries the seed the prefill engine drew, so the decode side continues its draws', async () => {
      await using a = await make();
      await using b = await make();
      await using single = await make();
      const params = { temperature: 1, maxTokens: 30, ignoreEos: true };
      const split = await splitRun(a, b, params);
      const ref = await run(single, prompt, { ...params, seed: split.handoff.seed });
      expect(split.tokenIds).toEqual(ref.tokenIds);
    });

    it('imported full blocks join the decode engine prefix cache (registerPrefix), or stay out of it', async () => {
      await using a = await make();
      await using b = await make();
      const params = { temperature: 0, maxTokens: 4, ignoreEos: true };
      const h1 = await a.prefill(prompt, params);
      await collect(b.generateFromHandoff(h1));
      const P = h1.promptTokenIds.length;
      const imported = Math.floor(P / 16);
      const filledLater = Math.floor((P + 3) / 16) - imported; // the last of 4 tokens is never computed
      expect(b.scheduler.blockManager.pool.numCachedBlocks).toBe(imported + filledLater);
      const hitsBefore = b.stats().prefixHitTokens;
      const again = await run(b, prompt, params);
      expect(again.tokenIds[0]).toBe(h1.firstTokenId);
      expect(b.stats().prefixHitTokens - hitsBefore).toBe(imported * 16);
      await using c = await make();
      await collect(c.generateFromHandoff(await a.prefill(prompt, params), { registerPrefix: false }));
      expect(c.scheduler.blockManager.pool.numCachedBlocks).toBe(filledLater);
    });

    it('a first token that ends the request hands over no KV; such a handoff cannot be continued', async () => {
      await using a = await make();
      await using b = await make();
      const h = await a.prefill(prompt, { temperature: 0, maxTokens: 1 });
      expect(h.finishReason).toBe('length');
      expect(h.kv).toBeNull();
      expect(h.firstOutput.finished).toBe(true);
      expectClean(a);
      expect(() => b.generateFromHandoff(h)).toThrow(KvPayloadError);
    });

    it('mismatched engines refuse the payload with typed errors, and take no blocks', async () => {
      await using a = await make();
      const h = await a.prefill(prompt, { temperature: 0, maxTokens: 8 });
      await using other = await make({ model: models.llama2xs260K, tokenizerPath: models.tok512 });
      await using f16 = await make({ kvDtype: 'f16' });
      await using bs32 = await make({ blockSize: 32 });
      expect(() => other.generateFromHandoff(h)).toThrow(KvModelMismatchError);
      expect(() => f16.generateFromHandoff(h)).toThrow(KvDtypeMismatchError);
      expect(() => bs32.generateFromHandoff(h)).toThrow(KvBlockSizeMismatchError);
      const truncated: KvHandoff = { ...h, kv: h.kv!.subarray(0, h.kv!.byteLength - 1) };
      expect(() => a.generateFromHandoff(truncated)).toThrow(KvPayloadError);
      const wrongPrompt: KvHandoff = { ...h, promptTokenIds: h.promptTokenIds.slice(1) };
      expect(() => a.generateFromHandoff(wrongPrompt)).toThrow(KvPayloadError);
      for (const e of [other, f16, bs32, a]) expectClean(e);
    });

    it('the native import checks the header too (typed codes), whatever the TypeScript side let through', async () => {
      await using a = await make();
      await using other = await make({ model: models.llama2xs260K, tokenizerPath: models.tok512 });
      const h = await a.prefill(prompt, { temperature: 0, maxTokens: 8 });
      const model = (
        other as unknown as {
          loaded: { model: import('../../packages/engine/src/native/native-types.js').NativeModel };
        }
      ).loaded.model;
      const n = readKvHeader(h.kv!).numBlocks;
      await expect(
        model.importKv!(
          h.kv!,
          Int32Array.from({ length: n }, (_, i) => i),
        ),
      ).rejects.toMatchObject({
        code: 'E_KV_MODEL',
      });
      const own = (
        a as unknown as { loaded: { model: import('../../packages/engine/src/native/native-types.js').NativeModel } }
      ).loaded.model;
      await expect(own.importKv!(h.kv!, new Int32Array(n))).rejects.toMatchObject({ code: 'E_KV_BLOCKS' }); // ids repeat
      await expect(own.importKv!(h.kv!, new Int32Array(n - 1))).rejects.toMatchObject({ code: 'E_KV_BLOCKS' });
      await expect(own.importKv!(new Uint8Array(100), new Int32Array(1))).rejects.toMatchObject({
        code: 'E_KV_FORMAT',
      });
      await expect(own.exportKv!(Int32Array.of(0, own.numBlocks), 20)).rejects.toMatchObject({ code: 'E_KV_BLOCKS' });
      await expect(own.exportKv!(Int32Array.of(0), 17)).rejects.toMatchObject({ code: 'E_KV_BLOCKS' }); // 17 tokens need 2 blocks
    });

    it('cancelling a prefill at any point rejects it and frees its blocks', async () => {
      await using a = await make();
      const params = { temperature: 0, maxTokens: 20 };
      // before it runs
      const ac = new AbortController();
      const p1 = a.prefill(prompt, params, { signal: ac.signal });
      ac.abort();
      await expect(p1).rejects.toBeInstanceOf(PrefillAbortedError);
      expectClean(a);
      // after its first token, while its export is queued (the step event comes after the token is taken)
      const off = a.onEvent((ev) => {
        if (ev.type === 'step') a.abort('cut');
      });
      const p2 = a.prefill(prompt, params, { requestId: 'cut' });
      await expect(p2).rejects.toBeInstanceOf(PrefillAbortedError);
      off();
      expectClean(a);
      // disposed while waiting
      const d = await make();
      const p3 = expect(d.prefill(prompt, params)).rejects.toMatchObject({ code: 'E_ENGINE_DISPOSED' });
      await d.dispose();
      await p3;
      expect(d.debugCounts().requests).toBe(0);
    });

    it('cancelling the decode side before, during and after the import frees its blocks', async () => {
      await using a = await make();
      await using b = await make();
      const params = { temperature: 0, maxTokens: 30, ignoreEos: true };
      const h = await a.prefill(prompt, params);
      // before the import runs (abort in the same turn)
      const s1 = b.generateFromHandoff(h, { requestId: 'x1' });
      expect(b.abort('x1')).toBe(true);
      const c1 = (await collect(s1))[0]!;
      expect(c1.finishReason).toBe('abort');
      expectClean(b);
      // after a few tokens: break out of the stream
      let n = 0;
      for await (const _ of b.generateFromHandoff(h, { requestId: 'x2' })) if (++n === 3) break;
      expectClean(b);
      // aborted through a signal while queued behind a full pool
      await using small = await make({ numBlocks: 6 });
      const ac = new AbortController();
      const busy = small.generate(prompt, { temperature: 0, maxTokens: 20 });
      const queued = small.generateFromHandoff(h, { requestId: 'x3', signal: ac.signal });
      setTimeout(() => ac.abort(), 1);
      const c3 = (await collect(queued))[0]!;
      expect(c3.finishReason).toBe('abort');
      await collect(busy);
      expectClean(small);
    });
  });
});
