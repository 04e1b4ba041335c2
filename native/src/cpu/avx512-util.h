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

}  // namespace flotilla::avx512
