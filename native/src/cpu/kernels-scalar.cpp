// Portable kernels. The f32 dot keeps 8 partial sums like the AVX2 kernel, so the two paths differ
// only by FMA rounding.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels-f32act.h"
#include "kernels.h"
#include "ops.h"

namespace flotilla {

namespace {

inline float load_elem(DType t, const uint8_t* row, int k) {
  uint16_t h;
  switch (t) {
    case DType::F32: {
      float f;
      std::memcpy(&f, row + 4 * size_t(k), 4);
      return f;
    }
    case DType::F16: std::memcpy(&h, row + 2 * size_t(k), 2); return fp16_to_f32(h);
    default: std::memcpy(&h, row + 2 * size_t(k), 2); return bf16_to_f32(h);
  }
}

float dot_float_row(DType t, const uint8_t* w, const float* x, int K) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    for (int j = 0; j < 8; j++) acc[j] += load_elem(t, w, k + j) * x[k + j];
  }
  for (int j = 0; k + j < K; j++) acc[j] += load_elem(t, w, k + j) * x[k + j];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));  // as the AVX2 hsum
}

inline int q_elem(DType t, const uint8_t* block, int i) {
  if (t == DType::Q8_0) return reinterpret_cast<const BlockQ8*>(block)->qs[i];
  if (t == DType::Q8_Z) {
    const auto* b = reinterpret_cast<const BlockQ8Z*>(block);
    return int(b->qs[i]) - int(b->z);
  }
  if (t == DType::Q4_Z) {
    const auto* b = reinterpret_cast<const BlockQ4Z*>(block);
    return (i < kGroup / 2 ? (b->qs[i] & 0xf) : (b->qs[i - kGroup / 2] >> 4)) - int(b->z);
  }
  const uint8_t* qs = reinterpret_cast<const BlockQ4*>(block)->qs;
  return (i < kGroup / 2 ? (qs[i] & 0xf) : (qs[i - kGroup / 2] >> 4)) - 8;
}

float dot_quant_row(DType t, const uint8_t* w, const BlockQ8Act* x, int nb) {
  const size_t bb = t == DType::Q8_0   ? sizeof(BlockQ8)
                    : t == DType::Q4_Z ? sizeof(BlockQ4Z)
                    : t == DType::Q8_Z ? sizeof(BlockQ8Z)
                                       : sizeof(BlockQ4);
  float acc = 0;
  for (int g = 0; g < nb; g++) {
    const uint8_t* block = w + g * bb;
    int32_t sum = 0;
    for (int i = 0; i < kGroup; i++) sum += q_elem(t, block, i) * x[g].qs[i];
    uint16_t d;
    std::memcpy(&d, block, 2);
    acc += static_cast<float>(sum) * (fp16_to_f32(d) * x[g].d);
  }
  return acc;
}

void matmul(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1) {
  const bool quant = is_quantized(w.type);
  const int nb = groups_of(w.cols);
  for (int n = n0; n < n1; n++) {
    const uint8_t* row = w.row(n);
    for (int t = 0; t < in.T; t++) {
      y[size_t(t) * ldy + n] = quant ? dot_quant_row(w.type, row, reinterpret_cast<const BlockQ8Act*>(in.xq + size_t(t) * in.ldq), nb)
                                     : dot_float_row(w.type, row, in.x + size_t(t) * in.ldx, in.K);
    }
  }
}

size_t quant_act_bytes(int n) { return sizeof(BlockQ8Act) * size_t(groups_of(n)); }

void quantize_act(const float* x, int n, uint8_t* outBytes) {
  auto* out = reinterpret_cast<BlockQ8Act*>(outBytes);
  for (int g = 0; g * kGroup < n; g++) {
    float v[kGroup] = {0};
    const int m = std::min(kGroup, n - g * kGroup);
    std::memcpy(v, x + g * kGroup, sizeof(float) * m);
    float amax = 0;
    for (float f : v) amax = std::max(amax, std::fabs(f));
    const float d = amax / 127.f, id = amax > 0 ? 127.f / amax : 0.f;
    out[g].d = d;
    for (int i = 0; i < kGroup; i++) out[g].qs[i] = static_cast<int8_t>(std::nearbyint(v[i] * id));
  }
}

float dot_kv(const float* q, const uint8_t* k, int n, KvType t) {
  if (t == KvType::I8) {
    const auto* k8 = reinterpret_cast<const int8_t*>(k);
    float acc = 0;
    for (int i = 0; i < n; i++) acc += q[i] * float(k8[i]);
    return acc;
  }
  return dot_float_row(t == KvType::F16 ? DType::F16 : DType::F32, k, q, n);
}

void axpy_kv(float a, const uint8_t* v, float* y, int n, KvType t) {
  if (t == KvType::I8) {
    const auto* v8 = reinterpret_cast<const int8_t*>(v);
    for (int i = 0; i < n; i++) y[i] += a * float(v8[i]);
    return;
  }
  const DType d = t == KvType::F16 ? DType::F16 : DType::F32;
  for (int i = 0; i < n; i++) y[i] += a * load_elem(d, v, i);
}

void matmul_f32act(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1) {
  matmul_f32act_decoded(matmul, w, in, y, ldy, n0, n1);
}

}  // namespace

const CpuKernels& scalar_kernels() {
  static const CpuKernels k = {"scalar", matmul, quant_act_bytes, quantize_act, dot_kv, axpy_kv, false, nullptr, nullptr,
                                flotilla::rmsnorm, flotilla::swiglu, flotilla::add_into, nullptr, nullptr, nullptr, matmul_f32act};
  return k;
}

}  // namespace flotilla
