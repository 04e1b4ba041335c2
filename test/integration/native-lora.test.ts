/**
 * LoRA in the native engine, on stories260K (HF and llama2.c layouts) with random PEFT adapters written
 * by the project's own writer: logits with an adapter equal those of the model with the adapter merged
 * into its weights (W + scale·B·A, written by peft-merge.ts) within 1e-4, for every kernel set; a batch
 * mixing two adapters and the base gives each sequence, bit for bit, what it gives alone; bad slots and
 * misshapen tensors are rejected with the tensor named.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readPeftAdapter } from '../../packages/engine/src/lora/peft-adapter.js';
import { type LoadedModel, loadModel } from '../../packages/engine/src/model-loader/load-model.js';
import { mergeAdapter } from '../../packages/engine/src/model-loader/writers/peft-merge.js';
import { writeRandomAdapter } from '../../packages/engine/src/model-loader/writers/peft-writer.js';
import type { NativeModel } from '../../packages/engine/src/native/native-types.js';
import { describeWithModels, models } from '../helpers/models.js';
import { Blocks, buildBatch, Seq } from './native-harness.js';

const PROMPT = [1, 403, 407, 261, 378, 285, 284, 395, 350, 426, 260, 266, 447, 271, 324, 322, 354, 262, 424, 413];
const OPTS = { numBlocks: 128, maxBatchTokens: 128, maxBatchSeqs: 8, maxLoras: 3, maxLoraRank: 16 };

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Logits of every prompt position, run as one prefill with the sequence on LoRA slot `slot` (-1: none). */
async function logitsWith(model: NativeModel, slot: number): Promise<Float32Array> {
  const b = buildBatch(model, new Blocks(model), [{ seq: new Seq(PROMPT), n: PROMPT.length }]);
  if (slot >= 0) b.loraSlots = Int32Array.of(slot);
  return model.logits(b, Int32Array.of(PROMPT.length));
}

/** Greedy decode of every sequence in the same steps, prefills in chunks; slots[i] is sequence i's adapter. */
async function generate(
  model: NativeModel,
  seqs: Seq[],
  slots: number[],
  maxNew: number,
  chunk: number,
): Promise<void> {
  const blocks = new Blocks(model);
  for (;;) {
    const live = seqs.map((seq, i) => ({ seq, i })).filter(({ seq }) => seq.generated.length < maxNew);
    if (live.length === 0) return;
    const work = live.map(({ seq }) => ({ seq, n: Math.min(chunk, seq.tokens.length - seq.computed) }));
    const b = buildBatch(model, blocks, work);
    b.loraSlots = Int32Array.from(live, ({ i }) => slots[i]!);
    const r = await model.step(b);
    work.forEach(({ seq, n }, s) => {
      seq.computed += n;
      if (seq.computed === seq.tokens.length) {
        seq.tokens.push(r.tokens[s]!);
        seq.logprobs.push(r.logprobs[s]!);
      }
    });
  }
}

describeWithModels('native LoRA: stories260K', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flotilla-lora-'));
  const adapters = [path.join(dir, 'a0'), path.join(dir, 'a1')];
  const merged = path.join(dir, 'merged');
  let hf: LoadedModel;
  let mergedModel: LoadedModel;
  beforeAll(async () => {
    hf = await loadModel(models.stories260KHf, OPTS);
    const { mkdir } = await import('node:fs/promises');
    for (const [i, a] of adapters.entries()) {
      await mkdir(a);
      await writeRandomAdapter(a, hf.spec.config, { rank: i === 0 ? 8 : 4, seed: 11 + i, std: 0.1 });
    }
    await mkdir(merged);
    await mergeAdapter(models.stories260KHf, adapters[0]!, merged);
    mergedModel = await loadModel(merged, { numBlocks: 64, maxBatchTokens: 128, maxBatchSeqs: 8 });
    for (const [i, a] of adapters.entries()) await hf.model.loadLora!(i, readPeftAdapter(a, hf.spec.config, 16).native);
  });
  afterAll(() => {
    hf?.dispose();
    mergedModel?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('logits with the adapter equal the merged model within 1e-4, and differ from the base', async () => {
    const withAdapter = await logitsWith(hf.model, 0);
    const want = await logitsWith(mergedModel.model, -1);
    const base = await logitsWith(hf.model, -1);
    expect(maxAbsDiff(withAdapter, want)).toBeLessThan(1e-4);
    expect(maxAbsDiff(base, want)).toBeGreaterThan(0.05); // the adapter does change the model
  });

  it('the same holds for every kernel set this CPU runs (scalar: row-major matrices)', async () => {
    const want = await logitsWith(mergedModel.model, -1);
    for (const isa of ['scalar', 'avx2', 'avx512']) {
      const before = process.env.FLOTILLA_CPU_ISA;
      process.env.FLOTILLA_CPU_ISA = isa;
      const m = await loadModel(models.stories260KHf, OPTS).finally(() => {
        if (before === undefined) delete process.env.FLOTILLA_CPU_ISA;
        else process.env.FLOTILLA_CPU_ISA = before;
      });
      try {
        await m.model.loadLora!(1, readPeftAdapter(adapters[0]!, m.spec.config, 16).native);
        expect(maxAbsDiff(await logitsWith(m.model, 1), want), `${isa} (${m.model.kernels})`).toBeLessThan(1e-4);
      } finally {
        m.dispose();
      }
    }
  });

  it('bf16 and f16 adapters are held as given: equal to the merged model within 1e-4 too', async () => {
    for (const dtype of ['bf16', 'f16'] as const) {
      const a = path.join(dir, `half-${dtype}`);
      const m = path.join(dir, `merged-${dtype}`);
      mkdirSync(a);
      mkdirSync(m);
      await writeRandomAdapter(a, hf.spec.config, { rank: 8, seed: 5, std: 0.05, dtype });
      await mergeAdapter(models.stories260KHf, a, m);
      const merged16 = await loadModel(m, { numBlocks: 64, maxBatchTokens: 128, maxBatchSeqs: 8 });
      try {
        await hf.model.loadLora!(2, readPeftAdapter(a, hf.spec.config, 16).native);
        const got = await logitsWith(hf.model, 2);
        const want = await logitsWith(merged16.model, -1);
        expect(maxAbsDiff(got, want), dtype).toBeLessThan(1e-4);
        expect(maxAbsDiff(got, await logitsWith(hf.model, -1)), dtype).toBeGreaterThan(0.05);
      } finally {
        merged16.dispose();
        await hf.model.unloadLora!(2);
      }
    }
  });

  it('a llama2.c base (interleaved RoPE) takes the HF-layout adapter with q/k rows reordered', async () => {
    const l2c = await loadModel(models.stories260K, OPTS);
    try {
      const baseHf = await logitsWith(hf.model, -1);
      const baseL2c = await logitsWith(l2c.model, -1);
      expect(maxAbsDiff(baseHf, baseL2c)).toBeLessThan(1e-4); // the same model in two layouts
      await l2c.model.loadLora!(0, readPeftAdapter(adapters[0]!, l2c.spec.config, 16).native);
      expect(maxAbsDiff(await logitsWith(l2c.model, 0), await logitsWith(hf.model, 0))).toBeLessThan(1e-4);
    } finally {
      l2c.dispose();
    }
  });

  it('a batch mixing two adapters and the base == each sequence alone, bit for bit', async () => {
    const prompts = [
      PROMPT.slice(0, 5),
      PROMPT.slice(0, 13),
      PROMPT,
      PROMPT.slice(0, 9),
      PROMPT.slice(2, 19),
      PROMPT.slice(0, 3),
    ];
    const slots = [-1, 0, 1, 0, -1, 1];
    const alone = prompts.map((p) => new Seq([...p]));
    for (const [i, s] of alone.entries()) await generate(hf.model, [s], [slots[i]!], 12, 1 << 20);
    const together = prompts.map((p) => new Seq([...p]));
    await generate(hf.model, together, slots, 12, 4);
    together.forEach((s, i) => {
      expect(s.tokens).toEqual(alone[i]!.tokens);
      expect(s.logprobs).toEqual(alone[i]!.logprobs);
    });
    // and the adapters matter: the same prompt under slot 0, slot 1 and none decodes three ways
    const runs = [-1, 0, 1].map(() => new Seq([...PROMPT]));
    await generate(hf.model, runs, [-1, 0, 1], 12, 1 << 20);
    expect(new Set(runs.map((s) => s.logprobs.join(','))).size).toBe(3);
  });

  it('draft() keeps each sequence on its adapter through its compacted decode steps', async () => {
    const prompts = [PROMPT.slice(0, 7), PROMPT.slice(0, 11), PROMPT.slice(0, 5)];
    const slots = [0, -1, 1];
    const numDraft = [4, 1, 3];
    const want = prompts.map((p) => new Seq([...p]));
    for (const [i, s] of want.entries()) await generate(hf.model, [s], [slots[i]!], numDraft[i]!, 1 << 20);
    const blocks = new Blocks(hf.model);
    const seqs = prompts.map((p) => new Seq([...p]));
    for (const s of seqs) blocks.ensure(s, s.tokens.length + 4);
    const b = buildBatch(
      hf.model,
      blocks,
      seqs.map((seq) => ({ seq, n: seq.tokens.length })),
    );
    b.loraSlots = Int32Array.from(slots);
    const ids = await hf.model.draft!(b, 4, Int32Array.from(numDraft));
    seqs.forEach((_, i) => {
      expect(Array.from(ids.subarray(i * 4, i * 4 + numDraft[i]!))).toEqual(want[i]!.generated);
    });
  });

  it('rejects slots outside the pool or empty, and tensors whose shape differs, naming them', async () => {
    const b = () => buildBatch(hf.model, new Blocks(hf.model), [{ seq: new Seq(PROMPT.slice(0, 4)), n: 4 }]);
    await expect(hf.model.step({ ...b(), loraSlots: Int32Array.of(3) })).rejects.toMatchObject({ code: 'E_BATCH' });
    await expect(hf.model.step({ ...b(), loraSlots: Int32Array.of(2) })).rejects.toMatchObject({
      code: 'E_BATCH',
      message: expect.stringMatching(/slot 2, which holds no adapter/),
    });
    const spec = readPeftAdapter(adapters[0]!, hf.spec.config, 16).native;
    const bad = {
      ...spec,
      tensors: spec.tensors.map((t) => (t.name === 'layers.1.wv.lora_b' ? { ...t, shape: [16, 8] } : t)),
    };
    await expect(hf.model.loadLora!(2, bad)).rejects.toMatchObject({
      code: 'E_SHAPE',
      message: expect.stringMatching(/layers\.1\.wv\.lora_b/),
    });
    await expect(hf.model.step({ ...b(), loraSlots: Int32Array.of(2) })).rejects.toMatchObject({ code: 'E_BATCH' });
    const plain = await loadModel(models.stories260K, { numBlocks: 16 });
    try {
      await expect(plain.model.step({ ...b(), loraSlots: Int32Array.of(0) })).rejects.toMatchObject({
        code: 'E_BATCH',
      });
    } finally {
      plain.dispose();
    }
  });
});
