// y_i (T, N_i) = x (T, K) . W_i^T for up to 3 weights sharing one input, in one parallel pass over
// chunks of output rows: each weight row is streamed from memory once per step for all T tokens.
#pragma once
#include "../core/thread-pool.h"
#include "kernels.h"

namespace flotilla {

struct MatmulOut {
  const Weight* w;
  float* y;  // (T, w->rows)
};

// xqScratch holds T * kern.quant_act_bytes(K) bytes (and at least T * K floats when f32Act); the input is
// quantized into it once when a weight needs it. f32Act: quantized weights take the f32 input through
// kern.matmul_f32act instead (activations 'f32'); a GPTQ act-order input is gathered into xqScratch as floats.
void matmul_parallel(ThreadPool& pool, const CpuKernels& kern, const float* x, int T, int K, uint8_t* xqScratch,
                     const MatmulOut* outs, int nOuts, bool f32Act = false);

}  // namespace flotilla
