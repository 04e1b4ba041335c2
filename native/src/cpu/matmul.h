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

// xqScratch holds T * kern.quant_act_bytes(K) bytes; the input is quantized into it once when a weight needs it.
void matmul_parallel(ThreadPool& pool, const CpuKernels& kern, const float* x, int T, int K, uint8_t* xqScratch,
                     const MatmulOut* outs, int nOuts);

}  // namespace flotilla
