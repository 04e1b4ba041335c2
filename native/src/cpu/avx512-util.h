// Helpers shared by the AVX-512 kernel files (only those are compiled with -mavx512*).
#pragma once
#include <immintrin.h>

// GCC 12's _mm512_cvtph_ps / _mm512_extract* pass an undefined vector as the merge source and then
// warn about it (GCC bug 105593); the value is never read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace flotilla::avx512 {

// One fixed tree for every 16-lane sum: lane i + lane i+8, then +4, +2, +1. Every output element of a
// matmul goes through this same tree, whatever tile computed it.
inline float hsum(__m512 v) {
  const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  const __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  const __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
  return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
}

// The first `rem` (0..16) lanes.
inline __mmask16 head_mask(int rem) { return static_cast<__mmask16>((1u << rem) - 1); }

// exp(x) per lane: e^x = 2^n * e^r with n = round(x log2 e) and r = x - n ln 2 in two FMAs (Cody-Waite:
// ln 2 split in a high part exact in n * hi and a low part), e^r (|r| <= 0.35) by its degree-7 Taylor
// polynomial: within ~2 ulp of expf over the whole range. (Reducing t = x log2 e directly, as
// the first AVX-512 attention exp did, loses ~|t| * 2^-24 of t to rounding: 5e-6 relative error
// at |x| = 88, fine for softmax weights but not for SwiGLU.) x is clamped to [-104, 89] so that
// +-inf give 0 and inf as expf does rather than NaN; scalef takes the ends' large n to 0 and inf.
inline __m512 exp_poly(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(89.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

}  // namespace flotilla::avx512
