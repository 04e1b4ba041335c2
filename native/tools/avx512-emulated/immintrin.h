// Stand-in for <immintrin.h>: the AVX-512 intrinsics the f32-activation kernel uses, emulated in
// portable C by SIMDe (libsimde-dev) plus the few SIMDe 0.7 lacks, so that kernel can be checked on
// a CPU without AVX-512 (run.sh). Not part of any build.
#pragma once
#define SIMDE_ENABLE_NATIVE_ALIASES
#define SIMDE_NO_NATIVE
#include <simde/x86/avx512.h>
#include <cstring>
typedef simde__mmask16 __mmask16;
#ifndef _MM_FROUND_NO_EXC
#define _MM_FROUND_NO_EXC SIMDE_MM_FROUND_NO_EXC
#define _MM_FROUND_TO_NEAREST_INT SIMDE_MM_FROUND_TO_NEAREST_INT
#endif
static inline __m256 sim_extractf32x8_ps(__m512 v, int i) { __m256 r; std::memcpy(&r, reinterpret_cast<char*>(&v) + 32 * i, 32); return r; }
#define _mm512_extractf32x8_ps sim_extractf32x8_ps
static inline __m512 sim_cvtepi32_ps(__m512i v) { int32_t a[16]; float f[16]; std::memcpy(a, &v, 64); for (int i = 0; i < 16; i++) f[i] = float(a[i]); __m512 r; std::memcpy(&r, f, 64); return r; }
#define _mm512_cvtepi32_ps sim_cvtepi32_ps

#include <cstdint>
#include "../../src/core/dtype.h"
static inline __m512 sim_cvtph_ps(__m256i h) {
  uint16_t u[16]; float f[16];
  std::memcpy(u, &h, 32);
  for (int i = 0; i < 16; i++) f[i] = flotilla::fp16_to_f32(u[i]);
  __m512 r; std::memcpy(&r, f, 64); return r;
}
#define _mm512_cvtph_ps sim_cvtph_ps
static inline __m512i sim_cvtepu16_epi32(__m256i h) {
  uint16_t u[16]; uint32_t o[16];
  std::memcpy(u, &h, 32);
  for (int i = 0; i < 16; i++) o[i] = u[i];
  __m512i r; std::memcpy(&r, o, 64); return r;
}
#define _mm512_cvtepu16_epi32 sim_cvtepu16_epi32
static inline void sim_mask_storeu_ps(void* p, __mmask16 m, __m512 v) {
  float f[16]; std::memcpy(f, &v, 64);
  for (int i = 0; i < 16; i++) if (m >> i & 1) static_cast<float*>(p)[i] = f[i];
}
#define _mm512_mask_storeu_ps sim_mask_storeu_ps
