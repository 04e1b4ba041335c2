/**
 * Format round trips through the native addon: one random model written as llama2.c, safetensors and
 * GGUF gives the same logits; an independent NumPy forward (reference_forward.py) agrees with the
 * addon; the three stories260K files in test/fixtures/models agree with each other and with goldens.json.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, makeRandomModel } from '../../packages/engine/src/model-loader/index.js';
import { maxAbsDiff, readTensor } from '../fixtures/tensors.js';
import { readModelSpec } from '../../packages/engine/src/model-loader/index.js';
import { writeLlama2c } from '../../packages/engine/src/model-loader/writers/llama2c-writer.js';
import { writeTokenizerBin } from '../../packages/engine/src/model-loader/writers/tokenizer-files.js';
import { syntheticVocab } from '../../packages/engine/src/model-loader/writers/synthetic-vocab.js';
import { mkdirSync } from 'node:fs';
import { prefillLogits, pythonReason, referenceLogits, tryLoadNative } from '../fixtures/native-addon.js';
import { haveModels, models, modelsDir } from '../helpers/models.js';

const native = await tryLoadNative();
const noAddon = !native.binding;
const noPython = pythonReason();
if (noAddon) console.warn(`[formats-addon] skipped: ${native.reason}`);
const tmp = mkdtempSync(path.join(tmpdir(), 'flotilla-rt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const loadOpts = { numBlocks: 8, maxBatchTokens: 128, maxBatchSeqs: 4, numThreads: 1, device: 'cpu' as const };
/** std 0.15 makes attention far from uniform, so a wrong RoPE layout or tensor mapping shows in the logits. */
const cfg = {
  dim: 64,
  hiddenDim: 96,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  vocabSize: 320,
  maxSeqLen: 64,
  tiedEmbeddings: false,
};
const tokens = [1, 40, 300, 7, 259, 260, 100, 42, 5, 319, 2, 77];

async function logitsOf(modelPath: string, toks = tokens, tokenizerPath?: string): Promise<Float32Array[]> {
  const loaded = await loadModel(modelPath, { ...loadOpts, ...(tokenizerPath ? { tokenizerPath } : {}) });
  try {
    return await prefillLogits(loaded.model, toks);
  } finally {
    loaded.dispose();
  }
}

function expectClose(a: ArrayLike<number>[], b: ArrayLike<number>[], tol: number, what: string) {
  expect(a.length).toBe(b.length);
  const worst = Math.max(...a.map((row, i) => maxAbsDiff(row, b[i]!)));
  expect(worst, `${what}: max |Δlogit| ${worst}`).toBeLessThan(tol);
}

describe('format round trips through the addon', () => {
  it.skipIf(noAddon)('a random model gives the same logits as llama2.c, safetensors and GGUF (f32)', async () => {
    for (const tied of [false, true]) {
      const paths = await Promise.all(
        (['llama2c', 'safetensors', 'gguf'] as const).map((format) =>
          makeRandomModel(
            { ...cfg, tiedEmbeddings: tied },
            { format, dir: path.join(tmp, `${format}-${tied}`), seed: 11, std: 0.15 },
          ),
        ),
      );
      const [bin, hf, gguf] = await Promise.all(paths.map((p) => logitsOf(p)));
      expect(bin![0]!.some((x) => Math.abs(x) > 0.5)).toBe(true);
      expectClose(gguf!, bin!, 1e-5, `gguf vs llama2c (tied=${tied})`);
      expectClose(hf!, bin!, 1e-4, `safetensors vs llama2c (tied=${tied})`);
    }
  });

  it.skipIf(noAddon)('f16 safetensors and f16 GGUF stay close to the f32 logits', async () => {
    // not bit-identical: GGUF keeps 1-D norm weights in F32 (as llama.cpp does), safetensors rounds them to F16
    const write = (format: 'safetensors' | 'gguf', dtype: 'f32' | 'f16') =>
      makeRandomModel(cfg, { format, dtype, dir: path.join(tmp, `${format}-${dtype}`), seed: 5, std: 0.15 });
    const f32 = await logitsOf(await write('gguf', 'f32'));
    expectClose(await logitsOf(await write('safetensors', 'f16')), f32, 2e-2, 'f16 safetensors vs f32');
    expectClose(await logitsOf(await write('gguf', 'f16')), f32, 2e-2, 'f16 gguf vs f32');
  });

  it.skipIf(noAddon)('Q8_0 / Q4_0 GGUF give the logits of their own weights dequantized in TypeScript', async () => {
    for (const dtype of ['q8_0', 'q4_0'] as const) {
      const q = await makeRandomModel(cfg, {
        format: 'gguf',
        dtype,
        dir: path.join(tmp, `gguf-${dtype}`),
        seed: 5,
        std: 0.15,
      });
      const spec = await readModelSpec(q);
      // the same values as an f32 llama2.c checkpoint, written from the test's own block decoder
      const dir = path.join(tmp, `deq-${dtype}`);
      mkdirSync(dir, { recursive: true });
      await writeLlama2c(path.join(dir, 'model.bin'), spec.config, { chunks: (name) => [readTensor(spec, name)] });
      await writeTokenizerBin(path.join(dir, 'tokenizer.bin'), syntheticVocab(cfg.vocabSize));
      const loaded = await loadModel(q, { ...loadOpts, weightFormat: 'f32' });
      const quantized = await prefillLogits(loaded.model, tokens);
      loaded.dispose();
      expectClose(quantized, await logitsOf(path.join(dir, 'model.bin')), 1e-4, `${dtype} vs its dequantized weights`);
    }
  });

  it.skipIf(noAddon || !!noPython)(
    `the addon matches the independent NumPy forward on random models${noPython ? ` (skipped: ${noPython})` : ''}`,
    async () => {
      const bin = await makeRandomModel(cfg, {
        format: 'llama2c',
        dir: path.join(tmp, 'ref-bin'),
        seed: 13,
        std: 0.15,
      });
      const hf = await makeRandomModel(cfg, {
        format: 'safetensors',
        dir: path.join(tmp, 'ref-hf'),
        seed: 13,
        std: 0.15,
      });
      const ref = referenceLogits(bin, tokens);
      expectClose(await logitsOf(bin), ref, 1e-3, 'addon (llama2c) vs numpy');
      expectClose(await logitsOf(hf), referenceLogits(hf, tokens), 1e-3, 'addon (safetensors) vs numpy on the HF file');
    },
  );

  it.skipIf(!!noPython)(
    `the NumPy forward gives the same logits for the random model's llama2.c and HF files${noPython ? ` (skipped: ${noPython})` : ''}`,
    async () => {
      // checks the safetensors writer's half-split q/k permutation without the addon
      const bin = await makeRandomModel(cfg, { format: 'llama2c', dir: path.join(tmp, 'np-bin'), seed: 17, std: 0.15 });
      const hf = await makeRandomModel(cfg, {
        format: 'safetensors',
        dir: path.join(tmp, 'np-hf'),
        seed: 17,
        std: 0.15,
      });
      const ref = referenceLogits(bin, tokens);
      expect(Math.max(...ref[0]!.map(Math.abs))).toBeGreaterThan(0.5);
      expectClose(referenceLogits(hf, tokens), ref, 1e-9, 'numpy on HF vs numpy on llama2c');
    },
  );
});

describe('loadModel', () => {
  it.skipIf(noAddon)('passes load options and onProgress through, and disposes via Symbol.asyncDispose', async () => {
    const p = await makeRandomModel(cfg, { format: 'gguf', dir: path.join(tmp, 'lm'), seed: 2 });
    const progress: [number, number][] = [];
    const loaded = await loadModel(p, {
      ...loadOpts,
      numBlocks: 5,
      onProgress: (done, total) => progress.push([done, total]),
    });
    expect(loaded.model.numBlocks).toBe(5);
    expect(loaded.spec.format).toBe('gguf');
    expect(loaded.tokenizer).toBe(loaded.spec.tokenizer);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)![0]).toBe(progress.at(-1)![1]);
    await loaded[Symbol.asyncDispose]();
    loaded.dispose(); // a second dispose is a no-op
    await expect(prefillLogits(loaded.model, [1, 2])).rejects.toThrow();
  });

  it('rejects a bad path with ModelFormatError before touching the addon', async () => {
    await expect(loadModel(path.join(tmp, 'missing.gguf'))).rejects.toMatchObject({ code: 'E_MODEL_FORMAT' });
  });
});

describe(`stories260K in three formats through the addon${noAddon ? ` (skipped: ${native.reason})` : !haveModels ? ` (skipped: no models at ${modelsDir})` : ''}`, () => {
  const skip = noAddon || !haveModels;
  const goldenPrefix = (): number[] =>
    JSON.parse(readFileSync(models.goldens, 'utf8')).stories260K.greedy_from_bos_48.slice(0, 9);

  it.skipIf(skip)('bin, GGUF and HF give the same logits (f32, 1e-4) and match goldens.json', async () => {
    const toks = goldenPrefix();
    const bin = await logitsOf(models.stories260K, toks);
    expectClose(await logitsOf(models.stories260KGguf, toks), bin, 1e-4, 'gguf vs bin');
    expectClose(await logitsOf(models.stories260KHf, toks), bin, 1e-4, 'hf vs bin');
    const goldens = JSON.parse(readFileSync(models.goldens, 'utf8')).stories260K.logits_check_on_first_9_tokens as {
      position: number;
      top5_ids: number[];
      top5_logits: number[];
    }[];
    for (const g of goldens)
      g.top5_ids.forEach((id, k) => expect(Math.abs(bin[g.position]![id]! - g.top5_logits[k]!)).toBeLessThan(1e-3));
  });

  it.skipIf(skip || !!noPython)('the addon matches the independent NumPy forward on stories260K.bin', async () => {
    const toks = goldenPrefix();
    expectClose(
      await logitsOf(models.stories260K, toks),
      referenceLogits(models.stories260K, toks),
      1e-3,
      'addon vs numpy',
    );
  });
});
