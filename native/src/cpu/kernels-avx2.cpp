// AVX2/FMA/F16C kernels (this file alone is compiled with -mavx2 -mfma -mf16c).
// Matmul tiles: 4 weight rows x 2 tokens, one 8-lane accumulator per (row, token) pair; tokens are
// walked in blocks of 64 so a tile's weight rows stay in cache while all tokens of the step pass.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels-avx2-f32act.h"
#include "kernels.h"
#include "ops.h"

namespace flotilla {

namespace {

constexpr int kRows = 4, kToks = 2, kTokenBlock = 64;

inline float hsum(__m256 v) {
  __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  __m128 s = _mm_add_ps(a, _mm_movehdup_ps(a));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehl_ps(s, s)));
}

inline __m256i tail_mask(int rem) {
  alignas(32) static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + 8 - rem));
}

struct LoadF32 {
  static __m256 load(const uint8_t* r, int k) { return _mm256_loadu_ps(reinterpret_cast<const float*>(r) + k); }
  static __m256 tail(const uint8_t* r, int k, int rem) {
    return _mm256_maskload_ps(reinterpret_cast<const float*>(r) + k, tail_mask(rem));
  }
};
inline __m128i load_u16_tail(const uint8_t* p, int rem) {
  alignas(16) uint16_t tmp[8] = {0};
  std::memcpy(tmp, p, 2 * size_t(rem));
  return _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
}
struct LoadF16 {
  static __m256 load(const uint8_t* r, int k) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 2 * size_t(k)))); }
  static __m256 tail(const uint8_t* r, int k, int rem) { return _mm256_cvtph_ps(load_u16_tail(r + 2 * size_t(k), rem)); }
};
struct LoadBF16 {
  static __m256 cvt(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }
  static __m256 load(const uint8_t* r, int k) { return cvt(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 2 * size_t(k)))); }
  static __m256 tail(const uint8_t* r, int k, int rem) { return cvt(load_u16_tail(r + 2 * size_t(k), rem)); }
};

template <class L, int R, int NT>
void tile_float(const Weight& w, int n, const MatmulIn& in, int t, float* y, int ldy) {
  __m256 acc[R][NT];
  const uint8_t* wr[R];
  const float* xr[NT];
  for (int r = 0; r < R; r++) wr[r] = w.row(n + r);
  for (int j = 0; j < NT; j++) xr[j] = in.x + size_t(t + j) * in.ldx;
  for (int r = 0; r < R; r++)
    for (int j = 0; j < NT; j++) acc[r][j] = _mm256_setzero_ps();
  int k = 0;
  for (; k + 8 <= in.K; k += 8) {
    __m256 wv[R];
    for (int r = 0; r < R; r++) wv[r] = L::load(wr[r], k);
    for (int j = 0; j < NT; j++) {
      const __m256 xv = _mm256_loadu_ps(xr[j] + k);
      for (int r = 0; r < R; r++) acc[r][j] = _mm256_fmadd_ps(wv[r], xv, acc[r][j]);
    }
  }
  if (k < in.K) {
    const int rem = in.K - k;
    for (int j = 0; j < NT; j++) {
      const __m256 xv = _mm256_maskload_ps(xr[j] + k, tail_mask(rem));
      for (int r = 0; r < R; r++) acc[r][j] = _mm256_fmadd_ps(L::tail(wr[r], k, rem), xv, acc[r][j]);
    }
  }
  for (int j = 0; j < NT; j++)
    for (int r = 0; r < R; r++) y[size_t(t + j) * ldy + n + r] = hsum(acc[r][j]);
}

// 32 weights of group g as int8: Q8_0 as stored (Q4_0 has its own tile, tile_q4).
struct LoadQ8 {
  static constexpr int kBlockBytes = sizeof(BlockQ8);
  static __m256i load(const uint8_t* row, int g, float* d) {
    const auto* b = reinterpret_cast<const BlockQ8*>(row) + g;
    *d = _cvtsh_ss(b->d);
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs));
  }
};

// Q4_Z: the nibbles less the block's zero point, in [-16, 15].
struct LoadQ4Z {
  static constexpr int kBlockBytes = sizeof(BlockQ4Z);
  static __m256i load(const uint8_t* row, int g, float* d) {
    const auto* b = reinterpret_cast<const BlockQ4Z*>(row) + g;
    *d = _cvtsh_ss(b->d);
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs));
    const __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0f));
    return _mm256_sub_epi8(v, _mm256_set1_epi8(static_cast<char>(b->z)));
  }
};

template <class Q, int R, int NT>
void tile_quant(const Weight& w, int n, const MatmulIn& in, int t, float* y, int ldy) {
  __m256 acc[R][NT];
  const uint8_t* wr[R];
  for (int r = 0; r < R; r++) wr[r] = w.row(n + r);
  for (int r = 0; r < R; r++)
    for (int j = 0; j < NT; j++) acc[r][j] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  const int nb = groups_of(in.K);
  // The tile's R rows are one contiguous run of R * rowBytes bytes, read as R streams that restart
  // at every tile, which the hardware prefetcher follows badly; so the run is prefetched as one
  // linear stream one tile ahead, R blocks' worth of lines per group: the next tile's rows are in
  // L1 when it starts (every line, row R-1's first ones included, lands before it is read).
  const char* ahead = reinterpret_cast<const char*>(wr[0]) + size_t(R) * w.rowBytes;
  for (int g = 0; g < nb; g++) {
    __m256i wq[R], aw[R];
    float dw[R];
    for (int off = 0; off < R * Q::kBlockBytes; off += 64) _mm_prefetch(ahead + size_t(g) * R * Q::kBlockBytes + off, _MM_HINT_T0);
    for (int r = 0; r < R; r++) {
      wq[r] = Q::load(wr[r], g, &dw[r]);
      aw[r] = _mm256_sign_epi8(wq[r], wq[r]);  // |w| as unsigned for maddubs; the sign moves to x
    }
    for (int j = 0; j < NT; j++) {
      const BlockQ8Act& xb = reinterpret_cast<const BlockQ8Act*>(in.xq + size_t(t + j) * in.ldq)[g];
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs));
      for (int r = 0; r < R; r++) {
        const __m256i prod = _mm256_madd_epi16(_mm256_maddubs_epi16(aw[r], _mm256_sign_epi8(xv, wq[r])), ones);
        acc[r][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(prod), _mm256_set1_ps(dw[r] * xb.d), acc[r][j]);
      }
    }
  }
  for (int j = 0; j < NT; j++)
    for (int r = 0; r < R; r++) y[size_t(t + j) * ldy + n + r] = hsum(acc[r][j]);
}

// Q4_0 without the sign trick: maddubs takes the nibbles (0..15) as they are, unsigned, against the
// signed activations, and 8 * (sum of x over each 4 lanes' bytes), computed once per token and group
// and shared by the tile's rows, is subtracted after madd. Each int32 lane is then exactly the sum of
// (q - 8) * x over its 4 bytes that the sign trick gives (no maddubs saturation: 2 * 15 * 127 fits in
// 16 bits), so the floats, and the bits of y, are the same; 3 fewer byte ops per row and group.
template <int R, int NT>
void tile_q4(const Weight& w, int n, const MatmulIn& in, int t, float* y, int ldy) {
  __m256 acc[R][NT];
  const uint8_t* wr[R];
  for (int r = 0; r < R; r++) wr[r] = w.row(n + r);
  for (int r = 0; r < R; r++)
    for (int j = 0; j < NT; j++) acc[r][j] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1), eights = _mm256_set1_epi8(8), low = _mm256_set1_epi8(0x0f);
  const int nb = groups_of(in.K);
  const char* ahead = reinterpret_cast<const char*>(wr[0]) + size_t(R) * w.rowBytes;  // as in tile_quant
  for (int g = 0; g < nb; g++) {
    for (int off = 0; off < R * int(sizeof(BlockQ4)); off += 64) _mm_prefetch(ahead + size_t(g) * R * sizeof(BlockQ4) + off, _MM_HINT_T0);
    __m256i xv[NT], xo[NT];
    float xd[NT];
    for (int j = 0; j < NT; j++) {
      const BlockQ8Act& xb = reinterpret_cast<const BlockQ8Act*>(in.xq + size_t(t + j) * in.ldq)[g];
      xv[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs));
      xo[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(eights, xv[j]), ones);
      xd[j] = xb.d;
    }
    for (int r = 0; r < R; r++) {
      const auto* b = reinterpret_cast<const BlockQ4*>(wr[r]) + g;
      const float dw = _cvtsh_ss(b->d);
      const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs));
      const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), low);
      for (int j = 0; j < NT; j++) {
        const __m256i prod = _mm256_sub_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(q, xv[j]), ones), xo[j]);
        acc[r][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(prod), _mm256_set1_ps(dw * xd[j]), acc[r][j]);
      }
    }
  }
  for (int j = 0; j < NT; j++)
    for (int r = 0; r < R; r++) y[size_t(t + j) * ldy + n + r] = hsum(acc[r][j]);
}

using TileFn = void (*)(const Weight&, int, const MatmulIn&, int, float*, int);

template <class L>
struct FloatTiles {
  static constexpr TileFn fns[kRows][kToks] = {{tile_float<L, 1, 1>, tile_float<L, 1, 2>},
                                               {tile_float<L, 2, 1>, tile_float<L, 2, 2>},
                                               {tile_float<L, 3, 1>, tile_float<L, 3, 2>},
                                               {tile_float<L, 4, 1>, tile_float<L, 4, 2>}};
};
template <class Q>
struct QuantTiles {
  static constexpr TileFn fns[kRows][kToks] = {{tile_quant<Q, 1, 1>, tile_quant<Q, 1, 2>},
                                               {tile_quant<Q, 2, 1>, tile_quant<Q, 2, 2>},
                                               {tile_quant<Q, 3, 1>, tile_quant<Q, 3, 2>},
                                               {tile_quant<Q, 4, 1>, tile_quant<Q, 4, 2>}};
};

struct Q4Tiles {
  static constexpr TileFn fns[kRows][kToks] = {{tile_q4<1, 1>, tile_q4<1, 2>},
                                               {tile_q4<2, 1>, tile_q4<2, 2>},
                                               {tile_q4<3, 1>, tile_q4<3, 2>},
                                               {tile_q4<4, 1>, tile_q4<4, 2>}};
};

void run_tiles(const TileFn (&fns)[kRows][kToks], const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1) {
  for (int t0 = 0; t0 < in.T; t0 += kTokenBlock) {
    const int t1 = std::min(in.T, t0 + kTokenBlock);
    for (int n = n0; n < n1; n += kRows) {
      const int R = std::min(kRows, n1 - n);
      for (int t = t0; t < t1; t += kToks) fns[R - 1][std::min(kToks, t1 - t) - 1](w, n, in, t, y, ldy);
    }
  }
}

void matmul(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1) {
  switch (w.type) {
    case DType::F32: return run_tiles(FloatTiles<LoadF32>::fns, w, in, y, ldy, n0, n1);
    case DType::F16: return run_tiles(FloatTiles<LoadF16>::fns, w, in, y, ldy, n0, n1);
    case DType::BF16: return run_tiles(FloatTiles<LoadBF16>::fns, w, in, y, ldy, n0, n1);
    case DType::Q8_0: return run_tiles(QuantTiles<LoadQ8>::fns, w, in, y, ldy, n0, n1);
    case DType::Q4_0: return run_tiles(Q4Tiles::fns, w, in, y, ldy, n0, n1);
    case DType::Q4_Z: return run_tiles(QuantTiles<LoadQ4Z>::fns, w, in, y, ldy, n0, n1);
    case DType::Q8_Z: return scalar_kernels().matmul(w, in, y, ldy, n0, n1);  // q - z needs 9 bits: no maddubs; same activations
  }
}

size_t quant_act_bytes(int n) { return sizeof(BlockQ8Act) * size_t(groups_of(n)); }

void quantize_act(const float* x, int n, uint8_t* outBytes) {
  auto* out = reinterpret_cast<BlockQ8Act*>(outBytes);
  const __m256 signBit = _mm256_set1_ps(-0.0f);
  const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int g = 0; g * kGroup < n; g++) {
    alignas(32) float v[kGroup] = {0};
    const float* src = x + g * kGroup;
    if (n - g * kGroup < kGroup) {
      std::memcpy(v, src, sizeof(float) * (n - g * kGroup));
      src = v;
    }
    __m256 f[4];
    __m256 amax = _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) {
      f[i] = _mm256_loadu_ps(src + 8 * i);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(signBit, f[i]));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float am = _mm_cvtss_f32(m4);
    out[g].d = am / 127.f;
    const __m256 id = _mm256_set1_ps(am > 0 ? 127.f / am : 0.f);
    __m256i q[4];
    for (int i = 0; i < 4; i++) q[i] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(f[i], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[g].qs), _mm256_permutevar8x32_epi32(p, perm));
  }
}

template <class L>
float dot_kv_t(const float* q, const uint8_t* k, int n) {
  __m256 acc = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), L::load(k, i), acc);
  if (i < n) acc = _mm256_fmadd_ps(_mm256_maskload_ps(q + i, tail_mask(n - i)), L::tail(k, i, n - i), acc);
  return hsum(acc);
}

// int8 KV rows (unscaled), widened in registers.
struct LoadI8Kv {
  static __m256 load(const uint8_t* r, int k) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(r + k))));
  }
  static __m256 tail(const uint8_t* r, int k, int rem) {
    alignas(16) int8_t b[16] = {};
    for (int i = 0; i < rem; i++) b[i] = static_cast<int8_t>(r[k + i]);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(b))));
  }
};

float dot_kv(const float* q, const uint8_t* k, int n, KvType t) {
  if (t == KvType::I8) return dot_kv_t<LoadI8Kv>(q, k, n);
  return t == KvType::F16 ? dot_kv_t<LoadF16>(q, k, n) : dot_kv_t<LoadF32>(q, k, n);
}

template <class L>
void axpy_kv_t(float a, const uint8_t* v, float* y, int n) {
  const __m256 av = _mm256_set1_ps(a);
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, L::load(v, i), _mm256_loadu_ps(y + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, _mm256_fmadd_ps(av, L::tail(v, i, n - i), _mm256_maskload_ps(y + i, m)));
  }
}

void axpy_kv(float a, const uint8_t* v, float* y, int n, KvType t) {
  if (t == KvType::I8) axpy_kv_t<LoadI8Kv>(a, v, y, n);
  else if (t == KvType::F16) axpy_kv_t<LoadF16>(a, v, y, n);
  else axpy_kv_t<LoadF32>(a, v, y, n);
}

// F16C, round to nearest even; the last n % 8 through f32_to_fp16 (the same bits).
void to_f16(const float* x, uint16_t* out, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; i++) out[i] = f32_to_fp16(x[i]);
}

}  // namespace

const CpuKernels& avx2_kernels() {
  static const CpuKernels k = {"avx2", matmul, quant_act_bytes, quantize_act, dot_kv, axpy_kv, false, nullptr, nullptr,
                                flotilla::rmsnorm, flotilla::swiglu, flotilla::add_into, nullptr, nullptr, to_f16, avx2::matmul_f32act_rows};
  return k;
}

}  // namespace flotilla
