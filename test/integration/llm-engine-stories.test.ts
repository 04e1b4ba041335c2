/**
 * LLMEngine on the real stories260K checkpoint through the native addon: the shared engine suite
 * (identical greedy output alone / batched / preempted / prefix-cached, aborts, leaks, stops, seeds,
 * n > 1, validation) plus run.c's golden greedy story.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import { tryLoadNative } from '../fixtures/native-addon.js';
import { engineSuite, run } from '../helpers/engine-suite.js';
import { describeWithModels, models } from '../helpers/models.js';

const native = await tryLoadNative();
if (!native.binding) console.warn(`[llm-engine-stories] skipped: ${native.reason}`);

const prompts = [
  'Once upon a time, there was a little dog',
  'Lily and Tom went to the park',
  'One day, a big bird',
  'The sun was hot. Ben wanted',
  'Sara had a red ball',
  'Tim saw a cat on the',
];

// One native thread: tests run beside others on shared cores, where a spinning pool of two only loses time.
const base = { model: models.stories260K, numThreads: 1, device: 'cpu' as const };

describeWithModels('LLMEngine on stories260K', () => {
  describe.skipIf(!native.binding)('engine', () => {
    engineSuite((o = {}) => LLMEngine.create({ ...base, ...o }), prompts);

    it("reproduces run.c's greedy story from BOS (goldens.json) and stops on BOS", async () => {
      const golden = (
        JSON.parse(readFileSync(models.goldens, 'utf8')) as Record<string, { greedy_from_bos_48: number[] }>
      ).stories260K!.greedy_from_bos_48;
      await using engine = await LLMEngine.create(base);
      const c = await run(engine, { tokenIds: [1] }, { temperature: 0, maxTokens: 48 });
      expect(c.tokenIds).toEqual(golden.slice(1));
      expect(c.text.startsWith('Once upon a time, there was a little girl named Lily.')).toBe(true);
      expect(engine.spec.stopTokenIds).toContain(1);
    });
  });
});
