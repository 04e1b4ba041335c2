import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeRandomModel, readModelSpec, type ModelSpec } from '../../packages/engine/src/model-loader/index.js';
import { readTensor, unpermuteHalf, maxAbsDiff } from '../fixtures/tensors.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'flotilla-random-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const tiny = { dim: 64, hiddenDim: 96, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 400, maxSeqLen: 64 };

/** Values of a canonical tensor in llama2.c's interleaved q/k layout, whatever the file's layout. */
function canonical(spec: ModelSpec, name: string): Float32Array {
  const v = readTensor(spec, name);
  const t = spec.tensors.find((x) => x.name === name)!;
  const headDim = spec.config.dim / spec.config.nHeads;
  return spec.config.ropeLayout === 'half' && /\.w[qk]$/.test(name)
    ? unpermuteHalf(v, t.shape[0]!, t.shape[1]!, headDim)
    : v;
}

describe('random-weight models in three formats', () => {
  for (const tied of [true, false]) {
    it(`hold the same weights as llama2c, safetensors and GGUF (tied=${tied})`, async () => {
      const cfg = { ...tiny, tiedEmbeddings: tied };
      const specs = await Promise.all(
        (['llama2c', 'safetensors', 'gguf'] as const).map(async (format) =>
          readModelSpec(await makeRandomModel(cfg, { format, dir: path.join(tmp, `${format}-${tied}`), seed: 7 })),
        ),
      );
      const [bin, hf, gguf] = specs as [ModelSpec, ModelSpec, ModelSpec];
      expect(hf.config).toEqual({ ...bin.config, ropeLayout: 'half' });
      expect(gguf.config).toEqual(bin.config);
      for (const t of bin.tensors) {
        const ref = canonical(bin, t.name);
        expect(maxAbsDiff(canonical(hf, t.name), ref), t.name).toBe(0);
        expect(maxAbsDiff(canonical(gguf, t.name), ref), t.name).toBe(0);
      }
      expect(bin.tensors.some((t) => t.name === 'output')).toBe(!tied);
      // the weights are plausible: matrices ~N(0, 0.02), norms around 1
      const wq = readTensor(bin, 'layers.0.wq');
      const std = Math.sqrt(wq.reduce((s, x) => s + x * x, 0) / wq.length);
      expect(std).toBeGreaterThan(0.018);
      expect(std).toBeLessThan(0.022);
    });
  }

  it('gives the three formats the same tokenizer', async () => {
    const dirs = ['llama2c', 'safetensors', 'gguf'].map((f) => path.join(tmp, `${f}-true`));
    const specs = await Promise.all(
      [path.join(dirs[0]!, 'model.bin'), dirs[1]!, path.join(dirs[2]!, 'model.gguf')].map((p) => readModelSpec(p)),
    );
    for (const s of ['hello there world', 'The quick brown fox, 123 🙂', 'ab  cd']) {
      const ids = specs.map((spec) => spec.tokenizer.encode(s));
      expect(ids[1]).toEqual(ids[0]);
      expect(ids[2]).toEqual(ids[0]);
      expect(specs[1]!.tokenizer.decode(ids[0]!)).toBe(s);
    }
  });

  it('writes f16 safetensors and f16/Q8_0/Q4_0 GGUF close to the f32 weights', async () => {
    const f32 = await readModelSpec(
      await makeRandomModel(tiny, { format: 'gguf', dir: path.join(tmp, 'q-f32'), seed: 3 }),
    );
    const tolerances = { f16: 1e-4, q8_0: (0.02 * 4) / 127, q4_0: (0.02 * 4) / 7 };
    for (const [dtype, tol] of Object.entries(tolerances) as [keyof typeof tolerances, number][]) {
      const q = await readModelSpec(
        await makeRandomModel(tiny, { format: 'gguf', dtype, dir: path.join(tmp, `q-${dtype}`), seed: 3 }),
      );
      expect(q.tensors.find((t) => t.name === 'layers.1.w2')!.dtype).toBe(dtype);
      expect(q.tensors.find((t) => t.name === 'norm')!.dtype).toBe('f32');
      expect(maxAbsDiff(readTensor(q, 'layers.1.w2'), readTensor(f32, 'layers.1.w2'))).toBeLessThan(tol);
    }
    const hf16 = await readModelSpec(
      await makeRandomModel(tiny, { format: 'safetensors', dtype: 'f16', dir: path.join(tmp, 'hf-f16'), seed: 3 }),
    );
    expect(hf16.tensors.every((t) => t.dtype === 'f16')).toBe(true);
    expect(maxAbsDiff(readTensor(hf16, 'layers.0.w1'), readTensor(f32, 'layers.0.w1'))).toBeLessThan(1e-4);
  });

  it('shards safetensors with an index when asked', async () => {
    const dir = path.join(tmp, 'sharded');
    await makeRandomModel(tiny, { format: 'safetensors', dir, seed: 7, maxShardBytes: 60_000 });
    const shards = readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
    expect(shards.length).toBeGreaterThan(2);
    expect(shards[0]).toMatch(/^model-00001-of-000\d\d\.safetensors$/);
    const spec = await readModelSpec(dir);
    expect(spec.files).toHaveLength(shards.length);
    const single = await readModelSpec(path.join(tmp, 'safetensors-true'));
    for (const t of single.tensors)
      expect(maxAbsDiff(readTensor(spec, t.name), readTensor(single, t.name)), t.name).toBe(0);
  });

  it('rejects configs a format cannot hold', async () => {
    await expect(
      makeRandomModel({ ...tiny, ropeTheta: 5e5 }, { format: 'llama2c', dir: path.join(tmp, 'bad') }),
    ).rejects.toThrow(RangeError);
    await expect(
      makeRandomModel({ ...tiny, vocabSize: 100 }, { format: 'gguf', dir: path.join(tmp, 'bad') }),
    ).rejects.toThrow(/259/);
  });
});
