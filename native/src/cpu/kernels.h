// The CPU backend's inner loops, one table per instruction set, chosen once at run time.
// Every kernel computes each output element with a fixed operation order that does not depend on
// how many rows are in the batch or which thread runs it, so batched and single steps agree bit for bit.
#pragma once
#include <cstdint>

#include "../core/dtype.h"
#include "../core/weights.h"

namespace flotilla {

// Activations of a matmul: x is (T, K) with row stride ldx; xq the same rows quantized in groups of
// 32 (ldq groups per row), present when the weight is quantized.
struct MatmulIn {
  int T = 0, K = 0;
  const float* x = nullptr;
  int ldx = 0;
  const BlockQ8Act* xq = nullptr;
  int ldq = 0;
};

struct CpuKernels {
  const char* name;
  // y[t * ldy + n] = w.row(n) . x_t for n in [n0, n1) and every t < T.
  void (*matmul)(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1);
  // n floats to groups_of(n) Q8 groups (the last group zero-padded).
  void (*quantize_act)(const float* x, int n, BlockQ8Act* out);
  // q . k over one head, k being f32 or f16 (KV cache element type).
  float (*dot_kv)(const float* q, const uint8_t* k, int n, bool f16);
  // y += a * v
  void (*axpy_kv)(float a, const uint8_t* v, float* y, int n, bool f16);
};

const CpuKernels& scalar_kernels();
#ifdef FLOTILLA_HAVE_AVX2
const CpuKernels& avx2_kernels();
#endif
// AVX2/FMA/F16C when the CPU has them and FLOTILLA_FORCE_SCALAR is unset, else scalar.
const CpuKernels& select_kernels();

}  // namespace flotilla
