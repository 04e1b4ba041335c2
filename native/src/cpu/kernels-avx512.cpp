// AVX-512 kernels (this file and kernels-avx512-int.cpp alone are compiled with -mavx512f/bw/dq/vl).
//
// F32 (and F16/BF16, widened on load) weights in panels (weights.h): a tile is P panels (16 output rows each, one vector) x TT tokens;
// every k loads P weight vectors (sequential in memory) and broadcasts TT activations, so P*TT FMAs
// share P + TT loads and nothing is reduced across lanes at the end. Each output is one FMA chain in
// k order from zero, so any batch size, tile shape or thread split gives the same bits. Tiles: P=2 x
// up to 12 tokens (24 accumulators) from 7 tokens up; P=4 x up to 6 below.
//
// Row-major float matmul tiles (weights not in panels): 4 weight rows x 6 tokens, one 16-lane accumulator per (row, token) pair (24 of
// the 32 zmm registers), so 24 independent FMAs per step hide the FMA latency while each step loads
// 4 weight vectors and 6 activation vectors. Tokens are walked in blocks of 64 so a tile's weight rows
// stay in L1 while every token of the step passes; the first pass over a tile prefetches the next one.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <utility>

#include "avx512-util.h"
#include "kernels-avx512-attn.h"
#include "kernels-avx512-f32act.h"
#include "kernels-avx512-int.h"
#include "kernels-avx512-rows.h"
#include "kernels-f32act.h"
#include "kernels.h"

namespace flotilla {

namespace {

using avx512::head_mask;
using avx512::hsum;

constexpr int kRows = 4, kToks = 6, kTokenBlock = 64;

struct LoadF32 {
  static constexpr int kBytes = 4;
  static __m512 load(const uint8_t* r, int k) { return _mm512_loadu_ps(reinterpret_cast<const float*>(r) + k); }
  static __m512 tail(const uint8_t* r, int k, __mmask16 m) { return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(r) + k); }
};
struct LoadF16 {
  static constexpr int kBytes = 2;
  static __m512 load(const uint8_t* r, int k) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + 2 * size_t(k)))); }
  static __m512 tail(const uint8_t* r, int k, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, r + 2 * size_t(k))); }
};
struct LoadBF16 {
  static constexpr int kBytes = 2;
  static __m512 cvt(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  static __m512 load(const uint8_t* r, int k) { return cvt(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + 2 * size_t(k)))); }
  static __m512 tail(const uint8_t* r, int k, __mmask16 m) { return cvt(_mm256_maskz_loadu_epi16(m, r + 2 * size_t(k))); }
};

// pf: where the caller wants the rows read next (the following tile), fetched at the pace this tile reads.
template <class L, int R, int NT>
void tile_float(const Weight& w, int n, const MatmulIn& in, int t, float* y, int ldy, const uint8_t* pf) {
  __m512 acc[R][NT];
  const uint8_t* wr[R];
  const float* xr[NT];
  for (int r = 0; r < R; r++) wr[r] = w.row(n + r);
  for (int j = 0; j < NT; j++) xr[j] = in.x + size_t(t + j) * in.ldx;
  for (int r = 0; r < R; r++)
    for (int j = 0; j < NT; j++) acc[r][j] = _mm512_setzero_ps();
  const int K = in.K;
  int k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 wv[R];
    for (int r = 0; r < R; r++) {
      _mm_prefetch(reinterpret_cast<const char*>(pf) + size_t(k) * L::kBytes * R + 64 * r, _MM_HINT_T0);
      wv[r] = L::load(wr[r], k);
    }
    for (int j = 0; j < NT; j++) {
      const __m512 xv = _mm512_loadu_ps(xr[j] + k);
      for (int r = 0; r < R; r++) acc[r][j] = _mm512_fmadd_ps(wv[r], xv, acc[r][j]);
    }
  }
  if (k < K) {
    const __mmask16 m = head_mask(K - k);
    __m512 wv[R];
    for (int r = 0; r < R; r++) wv[r] = L::tail(wr[r], k, m);
    for (int j = 0; j < NT; j++) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, xr[j] + k);
      for (int r = 0; r < R; r++) acc[r][j] = _mm512_fmadd_ps(wv[r], xv, acc[r][j]);
    }
  }
  for (int j = 0; j < NT; j++)
    for (int r = 0; r < R; r++) y[size_t(t + j) * ldy + n + r] = hsum(acc[r][j]);
}

using TileFn = void (*)(const Weight&, int, const MatmulIn&, int, float*, int, const uint8_t*);

template <class L, int R, int... NT>
constexpr auto row_of_tiles(std::integer_sequence<int, NT...>) {
  return std::array<TileFn, kToks>{tile_float<L, R, NT + 1>...};
}
template <class L>
struct FloatTiles {
  static constexpr std::array<std::array<TileFn, kToks>, kRows> fns = {
      row_of_tiles<L, 1>(std::make_integer_sequence<int, kToks>{}), row_of_tiles<L, 2>(std::make_integer_sequence<int, kToks>{}),
      row_of_tiles<L, 3>(std::make_integer_sequence<int, kToks>{}), row_of_tiles<L, 4>(std::make_integer_sequence<int, kToks>{})};
};

template <class L>
void matmul_float(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1) {
  const auto& fns = FloatTiles<L>::fns;
  for (int t0 = 0; t0 < in.T; t0 += kTokenBlock) {
    const int t1 = std::min(in.T, t0 + kTokenBlock);
    for (int n = n0; n < n1; n += kRows) {
      const int R = std::min(kRows, n1 - n);
      const uint8_t* next = w.row(n + R);  // rows are contiguous: the next tile starts where this one ends
      // tiles of near-equal width (32 tokens: 6,6,5,5,5,5, not 6,6,6,6,6,2), all with enough accumulators
      const int tiles = (t1 - t0 + kToks - 1) / kToks;
      for (int i = 0, t = t0; i < tiles; i++) {
        const int nt = (t1 - t + (tiles - i) - 1) / (tiles - i);
        fns[R - 1][nt - 1](w, n, in, t, y, ldy, i == 0 ? next : w.row(n));
        t += nt;
      }
    }
  }
}

// Panel elements: 16 consecutive ones (one k of one panel) widened to one f32 vector. F16 and BF16
// panels stream half the bytes of F32 and convert in registers (exactly), so the FMAs are the same.
struct PanelF32 {
  static constexpr int kBytes = 4;
  static __m512 load(const uint8_t* p) { return _mm512_loadu_ps(reinterpret_cast<const float*>(p)); }
};
struct PanelF16 {
  static constexpr int kBytes = 2;
  static __m512 load(const uint8_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
};
struct PanelBF16 {
  static constexpr int kBytes = 2;
  static __m512 load(const uint8_t* p) { return LoadBF16::cvt(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
};

// y rows [n, n + 16P) (the last panel may hold fewer than 16 real rows: `lastRows`) for tokens [t, t + TT).
// pf: the next tile's panels (or null), fetched into L2 at the pace this pass reads its own (one
// prefetch per 64-byte line), so the weights stream from memory while the FMAs run instead of before them.
template <class E, int P, int TT>
void panel_tile(const Weight& w, int n, int lastRows, const MatmulIn& in, int t, float* y, int ldy, const uint8_t* pf) {
  constexpr size_t kStep = size_t(kPanel) * E::kBytes;  // bytes of one k of one panel
  const int K = in.K;
  const uint8_t* wp = w.data + size_t(n) * K * E::kBytes;  // panel n / 16 starts at element n * K
  const float* xr[TT];
  for (int j = 0; j < TT; j++) xr[j] = in.x + size_t(t + j) * in.ldx;
  __m512 acc[P][TT];
  for (int p = 0; p < P; p++)
    for (int j = 0; j < TT; j++) acc[p][j] = _mm512_setzero_ps();
  for (int k = 0; k < K; k++) {
    __m512 wv[P];
    for (int p = 0; p < P; p++) {
      if (pf && (E::kBytes == 4 || (k & 1) == 0)) _mm_prefetch(reinterpret_cast<const char*>(pf + (size_t(p) * K + k) * kStep), _MM_HINT_T1);
      wv[p] = E::load(wp + (size_t(p) * K + k) * kStep);
    }
    for (int j = 0; j < TT; j++) {
      const __m512 xv = _mm512_set1_ps(xr[j][k]);
      for (int p = 0; p < P; p++) acc[p][j] = _mm512_fmadd_ps(wv[p], xv, acc[p][j]);
    }
  }
  for (int j = 0; j < TT; j++) {
    float* yr = y + size_t(t + j) * ldy + n;
    for (int p = 0; p < P - 1; p++) _mm512_storeu_ps(yr + p * kPanel, acc[p][j]);
    _mm512_mask_storeu_ps(yr + (P - 1) * kPanel, head_mask(lastRows), acc[P - 1][j]);
  }
}

using PanelFn = void (*)(const Weight&, int, int, const MatmulIn&, int, float*, int, const uint8_t*);
constexpr int kMaxP = 4, kMaxTT = 12, kPanelTokenBlock = 96;

template <class E, int P, int... TT>
constexpr auto panel_row(std::integer_sequence<int, TT...>) {
  return std::array<PanelFn, kMaxTT>{panel_tile<E, P, TT + 1>...};
}
template <class E>
constexpr std::array<std::array<PanelFn, kMaxTT>, kMaxP> kPanelFns = {
    panel_row<E, 1>(std::make_integer_sequence<int, kMaxTT>{}), panel_row<E, 2>(std::make_integer_sequence<int, kMaxTT>{}),
    panel_row<E, 3>(std::make_integer_sequence<int, kMaxTT>{}), panel_row<E, 4>(std::make_integer_sequence<int, kMaxTT>{})};

// Rows [n0, n1), n0 a multiple of 16. Tokens in blocks of 96 (their activations stay in L2 while the
// panels stream past), split into near-equal tiles.
template <class E>
void matmul_panels(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1) {
  const auto& fns = kPanelFns<E>;
  const int Pmax = in.T <= 6 ? 4 : 2, TTmax = Pmax == 4 ? 6 : kMaxTT;
  for (int t0 = 0; t0 < in.T; t0 += kPanelTokenBlock) {
    const int t1 = std::min(in.T, t0 + kPanelTokenBlock);
    const int tiles = (t1 - t0 + TTmax - 1) / TTmax;
    for (int n = n0; n < n1; n += Pmax * kPanel) {
      const int rows = std::min(n1 - n, Pmax * kPanel), P = (rows + kPanel - 1) / kPanel;
      const int lastRows = rows - (P - 1) * kPanel;
      // the next tile's panels (as many as this one's; the last tile of a chunk fetches nothing)
      const uint8_t* next = n + Pmax * kPanel < n1 && n1 - (n + Pmax * kPanel) >= rows ? w.data + size_t(n + Pmax * kPanel) * in.K * E::kBytes : nullptr;
      for (int i = 0, t = t0; i < tiles; i++) {
        const int tt = (t1 - t + (tiles - i) - 1) / (tiles - i);
        fns[P - 1][tt - 1](w, n, lastRows, in, t, y, ldy, i == 0 ? next : nullptr);
        t += tt;
      }
    }
  }
}

void matmul(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1) {
  if (w.panels && w.type == DType::F32) return matmul_panels<PanelF32>(w, in, y, ldy, n0, n1);
  if (w.panels && w.type == DType::F16) return matmul_panels<PanelF16>(w, in, y, ldy, n0, n1);
  if (w.panels && w.type == DType::BF16) return matmul_panels<PanelBF16>(w, in, y, ldy, n0, n1);
  switch (w.type) {
    case DType::F32: return matmul_float<LoadF32>(w, in, y, ldy, n0, n1);
    case DType::F16: return matmul_float<LoadF16>(w, in, y, ldy, n0, n1);
    case DType::BF16: return matmul_float<LoadBF16>(w, in, y, ldy, n0, n1);
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_Z:
    case DType::Q8_Z: return avx512::matmul_quant(w, in, y, ldy, n0, n1);
  }
}

template <class L>
float dot_kv_t(const float* q, const uint8_t* k, int n) {
  __m512 acc = _mm512_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), L::load(k, i), acc);
  if (i < n) acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(head_mask(n - i), q + i), L::tail(k, i, head_mask(n - i)), acc);
  return hsum(acc);
}

// int8 KV rows (unscaled), widened in registers.
struct LoadI8Kv {
  static __m512 load(const uint8_t* r, int k) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + k))));
  }
  static __m512 tail(const uint8_t* r, int k, __mmask16 m) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, r + k))); }
};

float dot_kv(const float* q, const uint8_t* k, int n, KvType t) {
  if (t == KvType::I8) return dot_kv_t<LoadI8Kv>(q, k, n);
  return t == KvType::F16 ? dot_kv_t<LoadF16>(q, k, n) : dot_kv_t<LoadF32>(q, k, n);
}

template <class L>
void axpy_kv_t(float a, const uint8_t* v, float* y, int n) {
  const __m512 av = _mm512_set1_ps(a);
  int i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, L::load(v, i), _mm512_loadu_ps(y + i)));
  if (i < n) {
    const __mmask16 m = head_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(av, L::tail(v, i, m), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

void axpy_kv(float a, const uint8_t* v, float* y, int n, KvType t) {
  if (t == KvType::I8) axpy_kv_t<LoadI8Kv>(a, v, y, n);
  else if (t == KvType::F16) axpy_kv_t<LoadF16>(a, v, y, n);
  else axpy_kv_t<LoadF32>(a, v, y, n);
}

// f32 activations: panels through their own kernel, row-major rows decoded into this set's f32 tiles.
void matmul_f32act(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1) {
  if (w.panels) return avx512::matmul_f32act_panels(w, in, y, ldy, n0, n1);
  matmul_f32act_decoded(matmul, w, in, y, ldy, n0, n1);
}

}  // namespace

const CpuKernels& avx512_kernels() {
  static const CpuKernels k = {"avx512", matmul, avx512::quant_act_bytes, avx512::quantize_act, dot_kv, axpy_kv, true, avx512::attend, avx512::attend_heads,
                                avx512::rmsnorm, avx512::swiglu, avx512::add_into, avx512::argmax, avx512::sum_exp, avx512::to_f16, matmul_f32act};
  return k;
}

}  // namespace flotilla
