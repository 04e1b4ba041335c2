/**
 * The CUDA backend where no usable GPU is present (every CI machine): device 'cuda' rejects with a
 * typed E_DEVICE that says why, device 'auto' falls back to the CPU and still matches the goldens,
 * and measureDeviceBandwidth throws E_DEVICE. On an addon built without nvcc, 'cuda' says so.
 * On a machine with a GPU these expectations do not hold; test/gpu/ covers that (npm run test:gpu).
 */
import { describe, expect, it } from 'vitest';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import { describeWithModels, models } from '../helpers/models.js';
import { generate, goldens, llama2cManifest, Seq } from './native-harness.js';

const binding = loadNative();
const gpuPresent = process.env.FLOTILLA_TEST_GPU === '1';

describe.skipIf(gpuPresent)('native CUDA backend without a GPU', () => {
  it(
    binding.hasCuda
      ? 'device cuda rejects with E_DEVICE naming the missing device'
      : 'device cuda rejects: built without CUDA',
    async () => {
      const tiny = {
        config: {
          dim: 8,
          hiddenDim: 16,
          nLayers: 1,
          nHeads: 2,
          nKvHeads: 2,
          vocabSize: 4,
          maxSeqLen: 8,
          ropeTheta: 10000,
          ropeLayout: 'interleaved' as const,
          normEps: 1e-5,
          tiedEmbeddings: true,
        },
        files: [],
        tensors: [],
        device: 'cuda' as const,
      };
      const err = await binding.loadModel(tiny).then(
        () => null,
        (e: Error & { code?: string }) => e,
      );
      expect(err).toBeInstanceOf(Error);
      expect(err!.code).toBe('E_DEVICE');
      if (binding.hasCuda)
        expect(err!.message).toMatch(
          /device 'cuda' is not usable: .*(no CUDA device|no NVIDIA driver|driver supports CUDA|compute capability)/,
        );
      else expect(err!.message).toMatch(/built without CUDA/);
    },
  );

  it('measureDeviceBandwidth throws E_DEVICE', () => {
    expect(() => binding.measureDeviceBandwidth(1 << 20)).toThrow(expect.objectContaining({ code: 'E_DEVICE' }));
  });

  it('rejects a gpuMemoryUtilization outside (0, 1]', async () => {
    await expect(
      binding.loadModel({ ...llama2cManifest(models.stories260K), gpuMemoryUtilization: 1.5 }),
    ).rejects.toMatchObject({ code: 'E_SHAPE' });
  });
});

describeWithModels('native CUDA backend without a GPU: auto falls back to the CPU', () => {
  it.skipIf(gpuPresent)("device 'auto' loads on the CPU and matches run.c's greedy goldens", async () => {
    const m = await binding.loadModel({ ...llama2cManifest(models.stories260K), numBlocks: 64, device: 'auto' });
    try {
      expect(m.backend).toBe('cpu');
      const seq = new Seq([1]);
      await generate(m, [seq], 48);
      expect(seq.tokens).toEqual(goldens('stories260K').greedy_from_bos_48);
    } finally {
      m.dispose();
    }
  });
});
