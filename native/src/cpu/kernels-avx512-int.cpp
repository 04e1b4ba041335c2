// AVX-512 VNNI kernels for Q8_0 / Q4_0 weights (compiled with -mavx512f/bw/dq/vl -mavx512vnni).
//
// vpdpbusd multiplies unsigned bytes by signed bytes, so the weights are made unsigned and the
// activations keep their sign: Q8 as w + 128 (an xor), Q4 as its raw nibble q = w + 8. The offset is
// taken back by starting each dot product at -offset * (sum of the activations of its 4 bytes), a
// per-activation value computed once when the activations are quantized. The integer sums are exact,
// so only the float accumulation differs from the scalar kernels.
//
// One zmm holds two 32-weight groups, so activations are laid out by pairs of groups:
//   ActPair { int8 qs[64]; float d[16] (scale of group 0 in lanes 0-7, of group 1 in 8-15); int32 nsum[16] }
// with nsum[i] = -(qs[4i] + ... + qs[4i+3]); an odd last group is padded with a zero group.
// Tiles: 4 weight rows x 4 tokens, 16 accumulators (the unpacked weights and their scales take 8 more).
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "avx512-util.h"
#include "kernels-avx512-int.h"

namespace flotilla::avx512 {

namespace {

struct alignas(64) ActPair {
  int8_t qs[64];
  float d[16];
  int32_t nsum[16];
};
static_assert(sizeof(ActPair) == 192, "three cache lines per pair of groups");

constexpr int kRows = 4, kToks = 4, kTokenBlock = 64, kPrefetchAhead = 1024;

inline int pairs_of(int n) { return (groups_of(n) + 1) / 2; }

// Scales of a pair of groups as 16 lanes: d0 in lanes 0-7, d1 in lanes 8-15.
inline __m512 pair_scales(uint16_t d0, uint16_t d1) {
  return _mm512_cvtph_ps(_mm256_mask_set1_epi16(_mm256_set1_epi16(static_cast<short>(d0)), 0xFF00, static_cast<short>(d1)));
}

// Groups 2p and 2p+1 of a row as unsigned bytes, and their scales; `two` is false for an odd last group.
struct LoadQ8 {
  static constexpr int kShift = 7;  // offset 128
  static constexpr int kBlockBytes = sizeof(BlockQ8);
  static __m512i load(const uint8_t* row, int p, bool two, __m512* d) {
    const auto* b = reinterpret_cast<const BlockQ8*>(row) + 2 * p;
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[0].qs));
    __m512i v = _mm512_zextsi256_si512(lo);
    if (two) {
      v = _mm512_inserti64x4(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[1].qs)), 1);
      *d = pair_scales(b[0].d, b[1].d);
    } else {
      v = _mm512_zextsi256_si512(lo);
      *d = pair_scales(b[0].d, 0);
    }
    return _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80)));
  }
};
struct LoadQ4 {
  static constexpr int kShift = 3;  // offset 8
  static constexpr int kBlockBytes = sizeof(BlockQ4);
  static __m512i load(const uint8_t* row, int p, bool two, __m512* d) {
    const auto* b = reinterpret_cast<const BlockQ4*>(row) + 2 * p;
    const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[0].qs));
    const __m128i q1 = two ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[1].qs)) : _mm_setzero_si128();
    *d = pair_scales(b[0].d, two ? b[1].d : 0);
    const __m512i q = _mm512_zextsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1));
    const __m512i z = _mm512_shuffle_i64x2(q, q, 0x50);                  // 128-bit lanes q0 q0 q1 q1
    const __m512i s = _mm512_mask_srli_epi16(z, 0xFF00FF00u, z, 4);       // high nibbles in lanes 1 and 3
    return _mm512_and_si512(s, _mm512_set1_epi8(0x0f));                  // elements 0-15, 16-31 of each group
  }
};

template <class Q, int R, int NT>
void tile_quant(const Weight& w, int n, const MatmulIn& in, int t, float* y, int ldy) {
  __m512 acc[R][NT];
  const uint8_t* wr[R];
  const ActPair* xr[NT];
  for (int r = 0; r < R; r++) wr[r] = w.row(n + r);
  for (int j = 0; j < NT; j++) xr[j] = reinterpret_cast<const ActPair*>(in.xq + size_t(t + j) * in.ldq);
  for (int r = 0; r < R; r++)
    for (int j = 0; j < NT; j++) acc[r][j] = _mm512_setzero_ps();
  const int nb = groups_of(in.K), np = (nb + 1) / 2;
  for (int p = 0; p < np; p++) {
    const bool two = 2 * p + 1 < nb;
    __m512i wq[R];
    __m512 dw[R];
    for (int r = 0; r < R; r++) {
      // R rows are R interleaved streams of odd-sized blocks: the hardware prefetcher alone leaves a
      // single-token step (all weight bytes, no reuse) waiting on memory, so fetch ~1 KB ahead.
      _mm_prefetch(reinterpret_cast<const char*>(wr[r]) + p * 2 * Q::kBlockBytes + kPrefetchAhead, _MM_HINT_T0);
      wq[r] = Q::load(wr[r], p, two, &dw[r]);
    }
    for (int j = 0; j < NT; j++) {
      const ActPair& a = xr[j][p];
      const __m512i xv = _mm512_load_si512(a.qs);
      const __m512i bias = _mm512_slli_epi32(_mm512_load_si512(a.nsum), Q::kShift);
      const __m512 dx = _mm512_load_ps(a.d);
      for (int r = 0; r < R; r++) {
        const __m512i dot = _mm512_dpbusd_epi32(bias, wq[r], xv);
        acc[r][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw[r], dx), acc[r][j]);
      }
    }
  }
  for (int j = 0; j < NT; j++)
    for (int r = 0; r < R; r++) y[size_t(t + j) * ldy + n + r] = hsum(acc[r][j]);
}

using TileFn = void (*)(const Weight&, int, const MatmulIn&, int, float*, int);

template <class Q, int R, int... NT>
constexpr auto row_of_tiles(std::integer_sequence<int, NT...>) {
  return std::array<TileFn, kToks>{tile_quant<Q, R, NT + 1>...};
}
template <class Q>
struct QuantTiles {
  static constexpr std::array<std::array<TileFn, kToks>, kRows> fns = {
      row_of_tiles<Q, 1>(std::make_integer_sequence<int, kToks>{}), row_of_tiles<Q, 2>(std::make_integer_sequence<int, kToks>{}),
      row_of_tiles<Q, 3>(std::make_integer_sequence<int, kToks>{}), row_of_tiles<Q, 4>(std::make_integer_sequence<int, kToks>{})};
};

template <class Q>
void run_tiles(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1) {
  const auto& fns = QuantTiles<Q>::fns;
  for (int t0 = 0; t0 < in.T; t0 += kTokenBlock) {
    const int t1 = std::min(in.T, t0 + kTokenBlock);
    for (int n = n0; n < n1; n += kRows) {
      const int R = std::min(kRows, n1 - n);
      for (int t = t0; t < t1; t += kToks) fns[R - 1][std::min(kToks, t1 - t) - 1](w, n, in, t, y, ldy);
    }
  }
}

// One group of 32 (the last may be short): int8 values and the scale, as the scalar kernels round them.
void quantize_group(const float* x, int m, int8_t* qs, float* d) {
  const __m512 lo = _mm512_maskz_loadu_ps(head_mask(std::min(m, 16)), x);
  const __m512 hi = m > 16 ? _mm512_maskz_loadu_ps(head_mask(std::min(m - 16, 16)), x + 16) : _mm512_setzero_ps();
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
  *d = amax / 127.f;
  const __m512 id = _mm512_set1_ps(amax > 0 ? 127.f / amax : 0.f);
  constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), _mm512_cvtsepi32_epi8(_mm512_cvt_roundps_epi32(_mm512_mul_ps(lo, id), kRound)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 16), _mm512_cvtsepi32_epi8(_mm512_cvt_roundps_epi32(_mm512_mul_ps(hi, id), kRound)));
}

}  // namespace

size_t quant_act_bytes(int n) { return sizeof(ActPair) * size_t(pairs_of(n)); }

void quantize_act(const float* x, int n, uint8_t* out) {
  auto* pairs = reinterpret_cast<ActPair*>(out);
  const int nb = groups_of(n);
  for (int p = 0; p < pairs_of(n); p++) {
    ActPair& a = pairs[p];
    for (int h = 0; h < 2; h++) {
      const int g = 2 * p + h;
      float d = 0;
      if (g < nb) quantize_group(x + g * kGroup, std::min(kGroup, n - g * kGroup), a.qs + 32 * h, &d);
      else std::memset(a.qs + 32 * h, 0, 32);
      _mm256_store_ps(a.d + 8 * h, _mm256_set1_ps(d));
    }
    const __m512i sum4 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), _mm512_load_si512(a.qs));
    _mm512_store_si512(a.nsum, _mm512_sub_epi32(_mm512_setzero_si512(), sum4));
  }
}

void matmul_quant(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1) {
  if (w.type == DType::Q8_0) run_tiles<LoadQ8>(w, in, y, ldy, n0, n1);
  else run_tiles<LoadQ4>(w, in, y, ldy, n0, n1);
}

}  // namespace flotilla::avx512
