// AVX-512 kernels for quantized weights in panels (Q8_0, Q4_0, Q4_Z, Q8_Z; weights.h) against f32
// activations (the engine's `activations: 'f32'`): the weights stay 4/8-bit in memory and are widened
// in registers, the activations are not quantized, so the result is the dequantized weights' f32
// product up to float rounding (the int8 kernels of kernels-avx512-int.cpp round every activation
// group to int8 first).
//
// Per group of 32 and panel: each 64-byte chunk of quants (16 rows x 4 bytes; weights.h) gives, per
// byte position, 16 rows' unsigned quants as int32 lanes (shift and mask), less the zero point (128,
// 8, or the rows' own zeros for the _Z types; exact in int32), converted to f32 and multiplied by the
// broadcast activation of that k into the group's f32 chain, which starts at zero. The group's sum
// then takes one FMA by the 16 rows' scales into the output accumulator. Each output is thus a fixed
// chain (groups in order, k in the panel's chunk order within a group) whatever the tile shape, the
// batch size or the thread split: a row's result does not depend on its neighbours.
// Tiles: 1 panel x up to 8 tokens when a step has at most 8 (decode: one sequential stream per
// thread), else 2 panels x up to 4 tokens; the first token tile of a block prefetches the next
// tile's panels into L2.
#include "kernels-avx512-f32act.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "avx512-util.h"

namespace flotilla::avx512 {

namespace {

using PanelFn = void (*)(const Weight&, int, int, const MatmulIn&, int, float*, int, const uint8_t*);
constexpr int kMaxP = 2, kMaxTT = 8, kTokenBlock = 96;

// Byte j (0..3) of every 32-bit lane, zero-extended.
template <int J>
inline __m512i byte_of(__m512i v) {
  if constexpr (J == 3) return _mm512_srli_epi32(v, 24);
  else if constexpr (J == 0) return _mm512_and_si512(v, _mm512_set1_epi32(0xff));
  else return _mm512_and_si512(_mm512_srli_epi32(v, 8 * J), _mm512_set1_epi32(0xff));
}

// P panels x TT tokens from row n (lastRows real rows in the last panel). xg: each token's group of
// 32 activations (a zero-padded copy for a short last group).
template <bool kQ8, int P, int TT>
void f32act_tile(const Weight& w, int n, int lastRows, const MatmulIn& in, int t, float* y, int ldy, const uint8_t* pf) {
  const DType type = w.type;
  const bool hasZ = type == DType::Q4_Z || type == DType::Q8_Z;
  const int nb = groups_of(in.K);
  const size_t pb = size_t(kPanel) * w.rowBytes;
  const uint8_t* base = w.data + size_t(n / kPanel) * pb;
  const size_t groupBytes = qpanel_head_bytes(type) + qpanel_quant_bytes(type);
  const __m512i constZ = _mm512_set1_epi32(kQ8 ? 128 : 8);
  __m512 acc[P][TT];
  for (int p = 0; p < P; p++)
    for (int j = 0; j < TT; j++) acc[p][j] = _mm512_setzero_ps();
  alignas(64) float pad[TT][kGroup];
  for (int g = 0; g < nb; g++) {
    if (pf)
      for (int p = 0; p < P; p++)
        for (size_t off = g * groupBytes; off < (g + 1) * groupBytes; off += 64)
          _mm_prefetch(reinterpret_cast<const char*>(pf) + p * pb + off, _MM_HINT_T1);
    const float* xg[TT];
    const int k0 = g * kGroup, m = std::min(kGroup, in.K - k0);
    for (int j = 0; j < TT; j++) {
      xg[j] = in.x + size_t(t + j) * in.ldx + k0;
      if (m < kGroup) {
        std::memset(pad[j], 0, sizeof pad[j]);
        std::memcpy(pad[j], xg[j], sizeof(float) * m);
        xg[j] = pad[j];
      }
    }
    __m512i zv[P];
    for (int p = 0; p < P; p++)
      zv[p] = hasZ ? _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + p * pb + qpanel_zeros_at(type, nb, g))))
                   : constZ;
    __m512 gs[P][TT];
    for (int p = 0; p < P; p++)
      for (int j = 0; j < TT; j++) gs[p][j] = _mm512_setzero_ps();
    const uint8_t* q = base + qpanel_quants_at(type, nb, g);
    // 16 rows' weights (q - z) at element k, times each token's x[k], into the group chains.
    const auto fma_k = [&](int p, __m512i u, int k) {
      const __m512 wv = _mm512_cvtepi32_ps(_mm512_sub_epi32(u, zv[p]));
      for (int j = 0; j < TT; j++) gs[p][j] = _mm512_fmadd_ps(wv, _mm512_set1_ps(xg[j][k]), gs[p][j]);
    };
    if constexpr (kQ8) {
      for (int c = 0; c < 8; c++)
        for (int p = 0; p < P; p++) {
          const __m512i v = _mm512_loadu_si512(q + p * pb + 64 * c);
          fma_k(p, byte_of<0>(v), 4 * c);
          fma_k(p, byte_of<1>(v), 4 * c + 1);
          fma_k(p, byte_of<2>(v), 4 * c + 2);
          fma_k(p, byte_of<3>(v), 4 * c + 3);
        }
    } else {
      const __m512i low4 = _mm512_set1_epi8(0x0f);
      for (int c = 0; c < 4; c++)
        for (int p = 0; p < P; p++) {
          const __m512i v = _mm512_loadu_si512(q + p * pb + 64 * c);
          const __m512i lo = _mm512_and_si512(v, low4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
          fma_k(p, byte_of<0>(lo), 4 * c);
          fma_k(p, byte_of<1>(lo), 4 * c + 1);
          fma_k(p, byte_of<2>(lo), 4 * c + 2);
          fma_k(p, byte_of<3>(lo), 4 * c + 3);
          fma_k(p, byte_of<0>(hi), 16 + 4 * c);
          fma_k(p, byte_of<1>(hi), 16 + 4 * c + 1);
          fma_k(p, byte_of<2>(hi), 16 + 4 * c + 2);
          fma_k(p, byte_of<3>(hi), 16 + 4 * c + 3);
        }
    }
    for (int p = 0; p < P; p++) {
      const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + p * pb + qpanel_scales_at(type, g))));
      for (int j = 0; j < TT; j++) acc[p][j] = _mm512_fmadd_ps(gs[p][j], dw, acc[p][j]);
    }
  }
  for (int j = 0; j < TT; j++) {
    float* yr = y + size_t(t + j) * ldy + n;
    for (int p = 0; p < P - 1; p++) _mm512_storeu_ps(yr + p * kPanel, acc[p][j]);
    _mm512_mask_storeu_ps(yr + (P - 1) * kPanel, head_mask(lastRows), acc[P - 1][j]);
  }
}

template <bool kQ8, int P, int... TT>
constexpr auto f32act_row(std::integer_sequence<int, TT...>) {
  return std::array<PanelFn, kMaxTT>{f32act_tile<kQ8, P, TT + 1>...};
}
template <bool kQ8>
struct F32ActTiles {
  static constexpr std::array<std::array<PanelFn, kMaxTT>, kMaxP> fns = {
      f32act_row<kQ8, 1>(std::make_integer_sequence<int, kMaxTT>{}), f32act_row<kQ8, 2>(std::make_integer_sequence<int, kMaxTT>{})};
};

// Rows [n0, n1), n0 a multiple of 16; tokens in blocks of 96 split into near-equal tiles.
template <bool kQ8>
void run_f32act(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1) {
  const auto& fns = F32ActTiles<kQ8>::fns;
  const int Pmax = in.T <= 8 ? 1 : 2, TTmax = Pmax == 1 ? 8 : 4;
  const size_t pb = size_t(kPanel) * w.rowBytes;
  for (int t0 = 0; t0 < in.T; t0 += kTokenBlock) {
    const int t1 = std::min(in.T, t0 + kTokenBlock);
    const int tiles = (t1 - t0 + TTmax - 1) / TTmax;
    for (int n = n0; n < n1; n += Pmax * kPanel) {
      const int rows = std::min(n1 - n, Pmax * kPanel), P = (rows + kPanel - 1) / kPanel;
      const int lastRows = rows - (P - 1) * kPanel;
      const int nn = n + Pmax * kPanel;
      const uint8_t* next = nn < n1 && n1 - nn >= rows ? w.data + size_t(nn / kPanel) * pb : nullptr;
      for (int i = 0, t = t0; i < tiles; i++) {
        const int tt = (t1 - t + (tiles - i) - 1) / (tiles - i);
        fns[P - 1][tt - 1](w, n, lastRows, in, t, y, ldy, i == 0 ? next : nullptr);
        t += tt;
      }
    }
  }
}

}  // namespace

void matmul_f32act_panels(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1) {
  if (w.type == DType::Q8_0 || w.type == DType::Q8_Z) run_f32act<true>(w, in, y, ldy, n0, n1);
  else run_f32act<false>(w, in, y, ldy, n0, n1);
}

}  // namespace flotilla::avx512
