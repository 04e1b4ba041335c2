// AVX-512 versions of ops.h's row steps, the sampler's argmax and exp sum, and the f16 KV store
// (CpuKernels in kernels.h says what each computes). Tails are masked vectors, so every element of a
// row goes through the same instructions wherever it lies.
#include "kernels-avx512-rows.h"

#include <immintrin.h>

#include <cmath>
#include <limits>

#include "avx512-util.h"

namespace flotilla::avx512 {

namespace {

constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
// The exp sum adds this many elements in float vectors before each add into the double total: short
// enough that float rounding stays near the scalar loop's double sum, long enough to amortize hsum.
constexpr int kExpChunk = 256;

inline float lowest() { return -std::numeric_limits<float>::infinity(); }

// sum of exp(x_i - shift) over at most kExpChunk elements, two accumulators (even and odd vectors).
inline float sum_exp_chunk(const float* x, int n, __m512 shift) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm512_add_ps(a0, exp_poly(_mm512_sub_ps(_mm512_loadu_ps(x + i), shift)));
    a1 = _mm512_add_ps(a1, exp_poly(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), shift)));
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : head_mask(n - i);
    a0 = _mm512_add_ps(a0, _mm512_maskz_mov_ps(m, exp_poly(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), shift))));
  }
  return hsum(_mm512_add_ps(a0, a1));
}

}  // namespace

void rmsnorm(float* out, const float* x, const float* w, int n, float eps) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;  // four FMA chains hide the FMA latency
  int i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
    const __m512 v2 = _mm512_loadu_ps(x + i + 32), v3 = _mm512_loadu_ps(x + i + 48);
    a0 = _mm512_fmadd_ps(v0, v0, a0), a1 = _mm512_fmadd_ps(v1, v1, a1);
    a2 = _mm512_fmadd_ps(v2, v2, a2), a3 = _mm512_fmadd_ps(v3, v3, a3);
  }
  for (; i < n; i += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(n - i >= 16 ? __mmask16(0xffff) : head_mask(n - i), x + i);
    a0 = _mm512_fmadd_ps(v, v, a0);
  }
  const float ss = hsum(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  const float inv = 1.0f / std::sqrt(ss / n + eps);
  const __m512 iv = _mm512_set1_ps(inv);
  for (i = 0; i < n; i += 16) {  // w * (inv * x), as the scalar loop
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : head_mask(n - i);
    const __m512 r = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_mul_ps(iv, _mm512_maskz_loadu_ps(m, x + i)));
    _mm512_mask_storeu_ps(out + i, m, r);
  }
}

void swiglu(float* gate, const float* up, int n) {
  const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
  for (int i = 0; i < n; i += 16) {  // g / (1 + exp(-g)) * up, as the scalar loop
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : head_mask(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, exp_poly(_mm512_sub_ps(zero, g))));
    _mm512_mask_storeu_ps(gate + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, up + i)));
  }
}

void add_into(float* x, const float* y, int n) {
  for (int i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : head_mask(n - i);
    _mm512_mask_storeu_ps(x + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

// Two passes: the maximum (four independent max chains; max_ps keeps the accumulator when the loaded
// lane is NaN, so NaNs are skipped as the scalar `>` skips them), then the first lane equal to it.
int32_t argmax(const float* x, int n) {
  if (n <= 0 || std::isnan(x[0])) return 0;  // the scalar loop never moves off a NaN x[0]
  __m512 m0 = _mm512_set1_ps(lowest()), m1 = m0, m2 = m0, m3 = m0;
  int i = 0;
  for (; i + 64 <= n; i += 64) {
    m0 = _mm512_max_ps(_mm512_loadu_ps(x + i), m0), m1 = _mm512_max_ps(_mm512_loadu_ps(x + i + 16), m1);
    m2 = _mm512_max_ps(_mm512_loadu_ps(x + i + 32), m2), m3 = _mm512_max_ps(_mm512_loadu_ps(x + i + 48), m3);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : head_mask(n - i);
    m0 = _mm512_max_ps(_mm512_mask_loadu_ps(_mm512_set1_ps(lowest()), m, x + i), m0);
  }
  const __m512 best = _mm512_set1_ps(_mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3))));
  for (i = 0; i < n; i += 16) {  // -0 == +0, so the first zero of either sign wins, as with `>`
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : head_mask(n - i);
    const __mmask16 eq = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, x + i), best, _CMP_EQ_OQ);
    if (eq) return i + __builtin_ctz(eq);
  }
  return 0;  // not reached: the maximum is one of the elements
}

double sum_exp(const float* x, int n, float shift) {
  const __m512 s = _mm512_set1_ps(shift);
  double sum = 0;
  for (int i = 0; i < n; i += kExpChunk) sum += sum_exp_chunk(x + i, n - i < kExpChunk ? n - i : kExpChunk, s);
  return sum;
}

void to_f16(const float* x, uint16_t* out, int n) {
  int i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm512_cvtps_ph(_mm512_loadu_ps(x + i), kRound));
  if (i < n) {
    const __mmask16 m = head_mask(n - i);
    _mm256_mask_storeu_epi16(out + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), kRound));
  }
}

}  // namespace flotilla::avx512
