// `npm run test:gpu`: the CUDA backend's correctness checks, only on a machine with an NVIDIA GPU
// (sm_80+) and an addon built with nvcc. Same transform as the root config; only test/gpu is included.
import base from '../../vitest.config.js';

export default {
  ...base,
  test: {
    ...base.test,
    include: ['test/gpu/**/*.test.ts'],
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
};
