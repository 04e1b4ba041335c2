// AVX2 kernel for quantized row-major weights (Q8_0, Q4_0, Q4_Z, Q8_Z) against f32 activations (the
// engine's `activations: 'f32'`; compiled with -mavx2 -mfma -mf16c). Per row and group of 32, the
// quants are widened to 4 x 8 int32 lanes, less the zero point (0 for Q8_0, 8 for Q4_0, the block's z;
// exact), converted to f32 and multiplied by the token's activations into the group's 8-lane chain,
// which then takes one FMA by the group's scale into the row's accumulator; one fixed 8-lane sum at
// the end. Each output's operations are the same whatever the batch size or tile: batch-invariant.
// Tiles: 1 row x up to 4 tokens (4 weight vectors, 4 chains, 4 accumulators of the 16 ymm registers).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels-avx2-f32act.h"

namespace flotilla::avx2 {

namespace {

constexpr int kToks = 4;

inline float hsum8(__m256 v) {
  const __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
  return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
}

inline __m256 widen(__m128i bytes8, __m256i z, bool sign) {
  const __m256i q = sign ? _mm256_cvtepi8_epi32(bytes8) : _mm256_cvtepu8_epi32(bytes8);
  return _mm256_cvtepi32_ps(_mm256_sub_epi32(q, z));
}

// Group g of a row: its 32 weights' (q - z) as 4 x 8 floats, and its scale.
inline void load_group(DType t, const uint8_t* row, int g, __m256 w[4], float* d) {
  uint16_t h;
  if (t == DType::Q8_0 || t == DType::Q8_Z) {
    const bool z8 = t == DType::Q8_Z;
    const uint8_t* b = row + size_t(g) * (z8 ? sizeof(BlockQ8Z) : sizeof(BlockQ8));
    std::memcpy(&h, b, 2);
    uint16_t z = 0;
    if (z8) std::memcpy(&z, b + 2, 2);
    const uint8_t* qs = b + (z8 ? 4 : 2);
    const __m256i zv = _mm256_set1_epi32(z);
    for (int i = 0; i < 4; i++) w[i] = widen(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(qs + 8 * i)), zv, !z8);
  } else {
    const bool z4 = t == DType::Q4_Z;
    const uint8_t* b = row + size_t(g) * (z4 ? sizeof(BlockQ4Z) : sizeof(BlockQ4));
    std::memcpy(&h, b, 2);
    uint16_t z = 8;
    if (z4) std::memcpy(&z, b + 2, 2);
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + (z4 ? 4 : 2)));
    const __m128i low4 = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_and_si128(raw, low4), hi = _mm_and_si128(_mm_srli_epi16(raw, 4), low4);  // elements 0-15, 16-31
    const __m256i zv = _mm256_set1_epi32(z);
    w[0] = widen(lo, zv, false);
    w[1] = widen(_mm_srli_si128(lo, 8), zv, false);
    w[2] = widen(hi, zv, false);
    w[3] = widen(_mm_srli_si128(hi, 8), zv, false);
  }
  *d = _cvtsh_ss(h);
}

template <int NT>
void tile(const Weight& w, int n, const MatmulIn& in, int t, float* y, int ldy) {
  const uint8_t* row = w.row(n);
  const int nb = groups_of(in.K);
  __m256 acc[NT];
  for (int j = 0; j < NT; j++) acc[j] = _mm256_setzero_ps();
  alignas(32) float pad[NT][kGroup];
  for (int g = 0; g < nb; g++) {
    __m256 wv[4];
    float d;
    load_group(w.type, row, g, wv, &d);
    const int k0 = g * kGroup, m = std::min(kGroup, in.K - k0);
    const __m256 dv = _mm256_set1_ps(d);
    for (int j = 0; j < NT; j++) {
      const float* x = in.x + size_t(t + j) * in.ldx + k0;
      if (m < kGroup) {  // a short last group: the missing activations are zeros
        std::memset(pad[j], 0, sizeof pad[j]);
        std::memcpy(pad[j], x, sizeof(float) * m);
        x = pad[j];
      }
      __m256 s = _mm256_mul_ps(wv[0], _mm256_loadu_ps(x));
      for (int i = 1; i < 4; i++) s = _mm256_fmadd_ps(wv[i], _mm256_loadu_ps(x + 8 * i), s);
      acc[j] = _mm256_fmadd_ps(s, dv, acc[j]);
    }
  }
  for (int j = 0; j < NT; j++) y[size_t(t + j) * ldy + n] = hsum8(acc[j]);
}

}  // namespace

void matmul_f32act_rows(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1) {
  using Fn = void (*)(const Weight&, int, const MatmulIn&, int, float*, int);
  static constexpr Fn fns[kToks] = {tile<1>, tile<2>, tile<3>, tile<4>};
  for (int n = n0; n < n1; n++)
    for (int t = 0; t < in.T; t += kToks) fns[std::min(kToks, in.T - t) - 1](w, n, in, t, y, ldy);
}

}  // namespace flotilla::avx2
