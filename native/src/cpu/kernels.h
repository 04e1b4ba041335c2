// The CPU backend's inner loops, one table per instruction set, chosen once at run time.
// Every kernel computes each output element with a fixed operation order that does not depend on
// how many rows are in the batch or which thread runs it, so batched and single steps agree bit for bit.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../core/dtype.h"
#include "../core/kv-type.h"
#include "../core/weights.h"

namespace flotilla {

// Activations of a matmul: x is (T, K) with row stride ldx; xq the same rows quantized once per matmul
// by the kernel set's quantize_act (its own layout, ldq bytes per row), present when a weight is quantized.
struct MatmulIn {
  int T = 0, K = 0;
  const float* x = nullptr;
  int ldx = 0;
  const uint8_t* xq = nullptr;
  size_t ldq = 0;
};

// One head's K (or V) rows of one sequence in the paged pool: position p at
// base + table[p / blockSize] * blockStride + (p % blockSize) * rowBytes, f32, f16 or int8; an int8
// row's f32 scale at base + table[p / blockSize] * blockStride + scaleOffset + (p % blockSize) * 4.
struct KvRows {
  const uint8_t* base;
  const int32_t* table;
  size_t blockStride;
  int blockSize, rowBytes;
  KvType type;
  size_t scaleOffset = 0;
};

struct CpuKernels {
  const char* name;
  // y[t * ldy + n] = w.row(n) . x_t for n in [n0, n1) and every t < T (n0 a multiple of 16 for panels).
  void (*matmul)(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1);
  // Bytes of one row of n activations as quantize_act writes it.
  size_t (*quant_act_bytes)(int n);
  // n floats to int8 groups of 32 with a scale each (the last group zero-padded), in this set's layout.
  void (*quantize_act)(const float* x, int n, uint8_t* out);
  // q . k over one head, k being f32, f16 or int8 (KV cache element type; int8 rows unscaled: the
  // caller multiplies by the row's scale).
  float (*dot_kv)(const float* q, const uint8_t* k, int n, KvType t);
  // y += a * v (int8: a already times the row's scale)
  void (*axpy_kv)(float a, const uint8_t* v, float* y, int n, KvType t);
  // Whether this set wants its F32, Q8_0 and Q4_0 weights in panels (weights.h, to_panels) and takes
  // them in matmul (other types stay row-major).
  bool panels;
  // out (hd) = softmax(scale * q.k_p, p < n) . v_p for one query row of one head; null, or false
  // returned for a head dim it does not take, means the generic loop over dot_kv/axpy_kv (attention.cpp).
  bool (*attend)(const float* q, const KvRows& k, const KvRows& v, int n, int hd, float scale, float* out);
  // attend() for all nHeads heads of one query row (q, out: nHeads * hd), walking the blocks once:
  // k/v address KV head 0, head h reads KV head h / group at + (h / group) * headStride. Same bits as
  // attend() per head. Null, or false returned, means one attend() per head.
  bool (*attend_heads)(const float* q, const KvRows& k, const KvRows& v, int nHeads, int group, size_t headStride, int n,
                       int hd, float scale, float* out);
  // One row of ops.h's rmsnorm / swiglu / add_into; never null (the scalar and AVX2 sets give ops.cpp's loops).
  void (*rmsnorm)(float* out, const float* x, const float* w, int n, float eps);
  void (*swiglu)(float* gate, const float* up, int n);
  void (*add_into)(float* x, const float* y, int n);
  // The sampler's passes over one logits row (sampler.h, SamplerKernels); null means its scalar loops.
  // argmax: the first index of the maximum (0 when x[0] is NaN, as the scalar loop); sum_exp: sum of exp(x_i - shift).
  int32_t (*argmax)(const float* x, int n);
  double (*sum_exp)(const float* x, int n, float shift);
  // n floats to IEEE half, rounded to nearest even: f32_to_fp16's bits for every non-NaN input (NaN
  // payloads may differ); null means f32_to_fp16 per element (the KV cache's f16 store).
  void (*to_f16)(const float* x, uint16_t* out, int n);
  // matmul's contract for a quantized weight (Q8_0, Q4_0, Q4_Z, Q8_Z) against the f32 activations in.x
  // (in.xq unused): the weight widened in registers, no activation quantization (the engine's
  // `activations: 'f32'`; kernels-f32act.h). Never null.
  void (*matmul_f32act)(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1);
};

// The scalar and AVX2 sets quantize activations to an array of BlockQ8Act (dtype.h).
const CpuKernels& scalar_kernels();
#ifdef FLOTILLA_HAVE_AVX2
const CpuKernels& avx2_kernels();
#endif
#ifdef FLOTILLA_HAVE_AVX512
const CpuKernels& avx512_kernels();
#endif

// The widest set this CPU runs (avx512: F/BW/DQ/VL/VNNI; avx2: AVX2/FMA/F16C; else scalar).
// FLOTILLA_CPU_ISA=avx512|avx2|scalar asks for one (falling back to the best one the CPU runs when
// it cannot); FLOTILLA_FORCE_SCALAR=1 is the older spelling of scalar. Read when a backend is created.
const CpuKernels& select_kernels();

// Whether this CPU (and this build) can run the named set.
bool cpu_runs(const char* isa);

}  // namespace flotilla
