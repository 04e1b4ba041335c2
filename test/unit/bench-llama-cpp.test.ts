import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LlamaCppError, llamaCppDir, parseBatchedBench, parseLlamaBench } from '../../bench/quant/llama-cpp.js';

// Shapes of what llama-bench -o json and llama-batched-bench print (build of Feb 2025), trimmed.
const LLAMA_BENCH_JSON = `[
  {
    "build_commit": "c392e5094",
    "model_type": "llama ?B Q4_0 (guessed)",
    "model_size": 8558208,
    "n_threads": 1,
    "n_prompt": 0,
    "n_gen": 32,
    "avg_ts": 1226.447231,
    "samples_ts": [ 1226.45 ]
  }
]
`;
const BATCHED = `main: n_kv_max = 768, n_batch = 512, n_ubatch = 512, flash_attn = 0, is_pp_shared = 0, n_gpu_layers = -1, n_threads = 1, n_threads_batch = 1

|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |
|-------|--------|------|--------|----------|----------|----------|----------|----------|----------|
|     8 |     16 |   32 |    768 |    0.330 |   775.66 |    2.074 |   246.83 |    2.404 |   319.42 |

llama_perf_context_print:        load time =     238.13 ms
`;

describe('llama.cpp output readers', () => {
  it('reads the tg row of llama-bench JSON', () => {
    expect(parseLlamaBench(LLAMA_BENCH_JSON, 32)).toEqual({
      tokS: 1226.447231,
      modelBytes: 8558208,
      build: 'c392e5094',
    });
  });

  it('refuses llama-bench output without the asked-for row or without JSON', () => {
    expect(() => parseLlamaBench(LLAMA_BENCH_JSON, 64)).toThrow(/no tg64 row/);
    const err = (() => {
      try {
        parseLlamaBench('error: failed to load model', 32);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(LlamaCppError);
    expect((err as LlamaCppError).code).toBe('E_LLAMA_CPP_OUTPUT');
  });

  it('reads S_TG of the batch row and the load time of llama-batched-bench', () => {
    expect(parseBatchedBench(BATCHED, 8, 16, 32)).toEqual({ tokS: 246.83, loadS: 0.23813 });
    expect(() => parseBatchedBench(BATCHED, 8, 16, 16)).toThrow(LlamaCppError);
    expect(() => parseBatchedBench(BATCHED.replace(/llama_perf.*\n/, ''), 8, 16, 32)).toThrow(/no result row/);
  });
});

describe('llamaCppDir', () => {
  it('is undefined when neither the option nor LLAMA_CPP_BIN is given', () => {
    const saved = process.env.LLAMA_CPP_BIN;
    delete process.env.LLAMA_CPP_BIN;
    try {
      expect(llamaCppDir(undefined)).toBeUndefined();
    } finally {
      if (saved !== undefined) process.env.LLAMA_CPP_BIN = saved;
    }
  });

  it('names the tools a directory lacks', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'llama-bin-'));
    writeFileSync(path.join(dir, 'llama-bench'), '');
    expect(() => llamaCppDir(dir)).toThrow(/lacks llama-batched-bench/);
    writeFileSync(path.join(dir, 'llama-batched-bench'), '');
    expect(llamaCppDir(dir)).toBe(dir);
  });
});
