/**
 * The LoRA trainer's forward pass (tools/lora-train, TypeScript) against the real engine on
 * stories260K-hf: with a random adapter saved by the trainer (LoraParams.save, all seven modules,
 * non-zero B) and loaded into LLMEngine, each prompt token's log-probability from the engine equals the
 * trainer's — so the trainer computes the model the engine serves, and its saved tensors are in the
 * layout and scale the engine reads. The base (no adapter) agrees too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import { ALL_LORA_MODULES } from '../../packages/engine/src/model-loader/writers/peft-writer.js';
import { loadBaseWeights } from '../../tools/lora-train/base-weights.js';
import { forward } from '../../tools/lora-train/forward.js';
import { LoraParams } from '../../tools/lora-train/lora-params.js';
import { collect } from '../helpers/engine-suite.js';
import { describeWithModels, models } from '../helpers/models.js';

/** log-softmax of row t at token `id`. */
function logprob(logits: ArrayLike<number>, V: number, t: number, id: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < V; j++) max = Math.max(max, logits[t * V + j]!);
  let sum = 0;
  for (let j = 0; j < V; j++) sum += Math.exp(logits[t * V + j]! - max);
  return logits[t * V + id]! - max - Math.log(sum);
}

describeWithModels('LoRA trainer forward = LLMEngine (stories260K-hf)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flotilla-lora-trainer-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prompt log-probabilities agree with and without a trainer-saved adapter', async () => {
    const base = await loadBaseWeights(models.stories260KHf);
    const lora = new LoraParams(base, { rank: 4, alpha: 8, targetModules: ALL_LORA_MODULES, seed: 3, bStd: 0.05 });
    await lora.save(dir, 'stories260K');
    await using engine = await LLMEngine.create({
      model: models.stories260KHf,
      numThreads: 1,
      device: 'cpu',
      guidedDecoding: false,
      maxLoras: 1,
      maxLoraRank: 8,
    });
    await engine.loadAdapter('trained', dir);
    const prompt = 'Once upon a time, there was a little girl named Lily. She loved to play with her dog.';
    const V = base.config.vocabSize;
    let moved = 0;
    for (const adapter of [undefined, 'trained']) {
      const [out] = await collect(
        engine.generate(prompt, { temperature: 0, maxTokens: 1, promptLogprobs: 0 }, adapter ? { adapter } : {}),
      );
      const lps = out!.outputs[0]!.promptLogprobs!;
      // The first prompt token (BOS) has no logprob; the others name their ids.
      const ids = lps.map((lp) => lp?.tokenId ?? 1);
      const tape = forward(base, ids, adapter ? lora : undefined);
      const baseTape = forward(base, ids);
      expect(lps.length).toBeGreaterThan(20);
      for (let t = 1; t < ids.length; t++) {
        const mine = logprob(tape.logits, V, t - 1, ids[t]!);
        expect(Math.abs(mine - lps[t]!.logprob), `position ${t}`).toBeLessThan(2e-3);
        moved = Math.max(moved, Math.abs(mine - logprob(baseTape.logits, V, t - 1, ids[t]!)));
      }
    }
    // The adapter changes the log-probabilities well beyond the tolerance (the check has teeth).
    expect(moved).toBeGreaterThan(0.05);
  });
});
