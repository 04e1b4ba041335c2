/**
 * The CPU backend's correctness checks, run on the CUDA backend (opt-in: npm run test:gpu on a GPU
 * machine; see docs/cuda.md). Goldens on stories260K through device 'cuda'; batching equal to
 * running alone; sampled runs reproducible; int8/int4 agreeing with f32 as on the CPU; logits close
 * to the CPU backend's. Fails loudly (not skips) when the addon lacks CUDA or no device is usable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NativeModel, NativeWeightFormat } from '../../packages/engine/src/native/native-types.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import { models } from '../helpers/models.js';
import {
  Blocks,
  buildBatch,
  generate,
  goldens,
  llama2cManifest,
  logSoftmax,
  prefillLogits,
  Seq,
  topK,
} from '../integration/native-harness.js';

const binding = loadNative();
const load = (extra: object = {}) =>
  binding.loadModel({
    ...llama2cManifest(models.stories260K),
    numBlocks: 256,
    maxBatchTokens: 256,
    maxBatchSeqs: 16,
    device: 'cuda',
    ...extra,
  });

describe('CUDA backend: stories260K', () => {
  let gpu: NativeModel, cpu: NativeModel;
  beforeAll(async () => {
    expect(binding.hasCuda).toBe(true);
    gpu = await load();
    cpu = await binding.loadModel({ ...llama2cManifest(models.stories260K), numBlocks: 256, device: 'cpu' });
  });
  afterAll(() => {
    gpu?.dispose();
    cpu?.dispose();
  });

  it('reports the cuda backend and a device bandwidth', () => {
    expect(gpu.backend).toBe('cuda');
    expect(gpu.kernels).toMatch(/^cuda-/);
    expect(binding.measureDeviceBandwidth(256 << 20)).toBeGreaterThan(1e11);
  });

  it("greedy from BOS equals run.c's 48 tokens (f32 and f16 KV)", async () => {
    for (const m of [gpu, await load({ kvDtype: 'f16' })]) {
      const seq = new Seq([1]);
      await generate(m, [seq], 48);
      expect(seq.tokens).toEqual(goldens('stories260K').greedy_from_bos_48);
    }
  });

  it('top-5 logits at positions 0, 4, 8 within 1e-3 of the goldens, and close to the CPU everywhere', async () => {
    const g = goldens('stories260K');
    const rows = await prefillLogits(gpu, g.greedy_from_bos_48.slice(0, 9));
    for (const check of g.logits_check_on_first_9_tokens) {
      expect(topK(rows[check.position], 5)).toEqual(check.top5_ids);
      check.top5_ids.forEach((id, i) =>
        expect(Math.abs(rows[check.position][id] - check.top5_logits[i])).toBeLessThan(1e-3),
      );
    }
    const ref = await prefillLogits(cpu, g.greedy_from_bos_48);
    const got = await prefillLogits(gpu, g.greedy_from_bos_48);
    let worst = 0;
    got.forEach((row, i) => row.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - ref[i][j])))));
    expect(worst).toBeLessThan(1e-3);
  });

  // kvDtype 'fp8' (e4m3, an f32 scale per token and head; native/src/cuda/attention.cu). Written
  // without a GPU to run it on: the bounds are the CPU int8 pool's on this model (max |logit diff|
  // 0.90, mean KL 7.5e-4, argmax agreement 0.99) loosened for e4m3's 3 mantissa bits.
  it('an fp8 KV pool: logits close to an f32 pool, nearly the same argmax, ~1.3x the blocks of f16', async () => {
    const fp8 = await load({ kvDtype: 'fp8' });
    expect(fp8.kvDtype).toBe('fp8');
    const start = new Seq([1]);
    await generate(gpu, [start], 120);
    const [a, b] = [await prefillLogits(gpu, start.tokens), await prefillLogits(fp8, start.tokens)];
    let kl = 0,
      agree = 0;
    a.forEach((row, t) => {
      const [p, q] = [logSoftmax(row), logSoftmax(b[t])];
      kl += p.reduce((acc, lp, v) => acc + Math.exp(lp) * (lp - q[v]), 0) / a.length;
      if (topK(row, 1)[0] === topK(b[t], 1)[0]) agree++;
    });
    expect(kl).toBeGreaterThan(0);
    expect(kl).toBeLessThan(1e-2);
    expect(agree / a.length).toBeGreaterThanOrEqual(0.9);
    fp8.dispose();
    const bytes = { kvCacheBytes: 4 << 20, numBlocks: undefined };
    const [f16, f8] = [await load({ ...bytes, kvDtype: 'f16' }), await load({ ...bytes, kvDtype: 'fp8' })];
    expect(f8.numBlocks / f16.numBlocks).toBeCloseTo(16 / 12, 1); // head dim 8: 8 bytes + a scale against 16
    f16.dispose();
    f8.dispose();
  });

  it('applies a logit bias (a ban, a forced token, a small nudge) as the CPU does, greedy and seeded', async () => {
    const story = goldens('stories260K').greedy_from_bos_48;
    const step = async (m: NativeModel, temperature: number) => {
      const seqs = [new Seq(story.slice(0, 5)), new Seq(story.slice(0, 9)), new Seq(story.slice(0, 3))];
      const b = buildBatch(
        m,
        new Blocks(m),
        seqs.map((seq) => ({ seq, n: seq.tokens.length })),
      );
      b.temperature.fill(temperature);
      b.seeds.set([7, 8, 9]);
      b.biasOffsets = Int32Array.from([0, 1, 2, 4]);
      b.biasTokens = Int32Array.from([story[5]!, 407, story[3]!, 300]);
      b.biasValues = Float32Array.from([-Infinity, 100, -1.5, 2]);
      return Array.from((await m.step(b)).tokens.subarray(0, 3));
    };
    for (const t of [0, 0.8]) {
      const want = await step(cpu, t);
      expect(await step(gpu, t)).toEqual(want);
      expect(want[0]).not.toBe(story[5]);
      expect(want[1]).toBe(407);
    }
  });

  it('8 prompts batched with chunked prefill == each alone (tokens; logprobs within 1e-4)', async () => {
    const story = goldens('stories260K').greedy_from_bos_48;
    const prompts = [1, 3, 7, 12, 17, 25, 33, 40].map((n, i) =>
      i % 2 ? [1, ...story.slice(1, n).reverse()] : story.slice(0, n),
    );
    const alone = prompts.map((p) => new Seq(p));
    for (const s of alone) await generate(gpu, [s], 24);
    const together = prompts.map((p) => new Seq(p));
    await generate(gpu, together, 24, (s) => [4, 5, 16][s.promptLen % 3]);
    together.forEach((s, i) => {
      expect(s.tokens).toEqual(alone[i].tokens);
      s.logprobs.forEach((lp, j) => expect(Math.abs(lp - alone[i].logprobs[j])).toBeLessThan(1e-4));
    });
  });

  it('sampled runs: reproducible, batch-independent, and equal to the CPU sampler on the same logits', async () => {
    const sampling = (i: number) => ({
      temperature: 0.9,
      topK: 40,
      topP: 0.9,
      minP: 0.02,
      seed: 1000 + i,
      repetitionPenalty: 1.1,
      presencePenalty: 0.2,
      frequencyPenalty: 0.1,
    });
    const alone = [0, 1, 2, 3].map((i) => new Seq([1], sampling(i)));
    for (const s of alone) await generate(gpu, [s], 32);
    const together = [0, 1, 2, 3].map((i) => new Seq([1], sampling(i)));
    await generate(gpu, together, 32);
    together.forEach((s, i) => expect(s.tokens).toEqual(alone[i].tokens));
    const onCpu = [0, 1, 2, 3].map((i) => new Seq([1], sampling(i)));
    await generate(cpu, onCpu, 32);
    // same semantics; logits differ in the last bits, so allow a rare divergence late in a run
    const agree = onCpu.filter((s, i) => s.tokens.slice(0, 16).join() === alone[i].tokens.slice(0, 16).join()).length;
    expect(agree).toBeGreaterThanOrEqual(3);
    for (const opts of [
      { temperature: 1, seed: 5 },
      { temperature: 0.7, topP: 0.5, seed: 6 },
      { temperature: 1.2, topK: 5, seed: 7 },
      { temperature: 1, minP: 0.1, seed: 8 },
    ]) {
      const a = new Seq([1], opts),
        b = new Seq([1], opts);
      await generate(gpu, [a], 16);
      await generate(cpu, [b], 16);
      expect(a.tokens.slice(0, 8)).toEqual(b.tokens.slice(0, 8));
    }
  });

  it('top logprobs match the CPU', async () => {
    const a = new Seq([1], { numLogprobs: 5 }),
      b = new Seq([1], { numLogprobs: 5 });
    await generate(gpu, [a], 8);
    await generate(cpu, [b], 8);
    expect(a.tokens).toEqual(b.tokens);
    a.logprobs.forEach((lp, i) => expect(Math.abs(lp - b.logprobs[i])).toBeLessThan(1e-3));
  });

  it('int8 / int4 agree with f32 as on the CPU (top-1 agreement, perplexity bounds)', async () => {
    const text = goldens('stories260K').greedy_from_bos_48;
    const ref = (await prefillLogits(gpu, text)).map(logSoftmax);
    for (const [fmt, minAgree, pplBound] of [
      ['bf16', 0.95, 0.02],
      ['int8', 0.95, 0.02],
      ['int4', 0.8, 0.1],
    ] as [NativeWeightFormat, number, number][]) {
      const m = await load({ weightFormat: fmt });
      const rows = (await prefillLogits(m, text)).map(logSoftmax);
      let agree = 0,
        nllRef = 0,
        nll = 0;
      for (let i = 0; i + 1 < text.length; i++) {
        const arg = (r: Float64Array) => r.indexOf(Math.max(...r));
        agree += arg(ref[i]) === arg(rows[i]) ? 1 : 0;
        nllRef -= ref[i][text[i + 1]];
        nll -= rows[i][text[i + 1]];
      }
      expect(agree / (text.length - 1)).toBeGreaterThanOrEqual(minAgree);
      expect(Math.exp(nll / (text.length - 1)) / Math.exp(nllRef / (text.length - 1)) - 1).toBeLessThan(pplBound);
      m.dispose();
    }
  });

  it('sizes the KV pool from gpuMemoryUtilization when no size is given', async () => {
    const small = await binding.loadModel({
      ...llama2cManifest(models.stories260K),
      device: 'cuda',
      gpuMemoryUtilization: 0.2,
    });
    const smallBlocks = small.numBlocks;
    small.dispose();
    const big = await binding.loadModel({
      ...llama2cManifest(models.stories260K),
      device: 'cuda',
      gpuMemoryUtilization: 0.4,
    });
    expect(big.numBlocks).toBeGreaterThan(smallBlocks * 1.5);
    big.dispose();
    await expect(
      binding.loadModel({ ...llama2cManifest(models.stories260K), device: 'cuda', gpuMemoryUtilization: 0.0001 }),
    ).rejects.toMatchObject({ code: 'E_OOM' });
  });
});
