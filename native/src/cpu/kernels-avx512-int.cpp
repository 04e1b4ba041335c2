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
// with nsum[i] = -(qs[4i] + ... + qs[4i+3]), and sum[h] = qs[32h] + ... + qs[32h+31] (for the panel
// kernels); an odd last group is padded with a zero group.
// Tiles: 4 weight rows x 4 tokens, 16 accumulators (the unpacked weights and their scales take 8 more).
//
// Weights in panels (weights.h): a tile is P panels (16 rows each) x TT tokens. Per group of 32 and
// token, each panel's int32 accumulator starts at -offset * (the group's activation sum) and takes 8
// vpdpbusd of a weight chunk (16 rows x 4 k-steps) by 4 broadcast activation bytes: the exact group
// sums of 16 rows in one vector. Then one conversion and one FMA by (row scales * activation scale)
// into the float accumulator: each output is one FMA chain in group order, nothing is reduced across
// lanes, so any batch size, tile shape or thread split gives the same bits. Tiles: 1 panel (up to 8
// tokens: a thread's rows read as one stream, as decode bound by memory wants) or 2 panels, x up to 6
// tokens; each tile's first token pass prefetches the next tile's panels into L2.
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
  int32_t sum[2];
  int32_t pad[14];
};
static_assert(sizeof(ActPair) == 256, "four cache lines per pair of groups");

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

// Q4_Z / Q8_Z weights left row-major (the backend puts them in panels; this serves direct kernel
// calls): plain loops over the same activations, one exact integer sum per group.
void matmul_z_rows(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1) {
  const int nb = groups_of(in.K);
  const bool q8 = w.type == DType::Q8_Z;
  for (int n = n0; n < n1; n++) {
    const auto* b4 = reinterpret_cast<const BlockQ4Z*>(w.row(n));
    const auto* b8 = reinterpret_cast<const BlockQ8Z*>(w.row(n));
    for (int t = 0; t < in.T; t++) {
      const auto* a = reinterpret_cast<const ActPair*>(in.xq + size_t(t) * in.ldq);
      float acc = 0;
      for (int g = 0; g < nb; g++) {
        const int8_t* xq = a[g / 2].qs + 32 * (g & 1);
        const int z = q8 ? b8[g].z : b4[g].z;
        int32_t sum = 0;
        for (int i = 0; i < kGroup; i++) {
          const int q = q8 ? b8[g].qs[i] : i < kGroup / 2 ? (b4[g].qs[i] & 0xf) : (b4[g].qs[i - kGroup / 2] >> 4);
          sum += (q - z) * xq[i];
        }
        acc += float(sum) * (fp16_to_f32(q8 ? b8[g].d : b4[g].d) * a[g / 2].d[8 * (g & 1)]);
      }
      y[size_t(t) * ldy + n] = acc;
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

// Quantized panels: P panels x TT tokens from row n (lastRows real rows in the last panel). pf: the
// next tile's first panel (or null), fetched into L2 at the pace this pass reads its own panels.
// kZ (Q4_Z, Q8_Z): each row's group has its own zero point instead of the constant offset 8 / 128,
// so each int32 chain starts at -zero * (the group's activation sum), 16 rows' zeros in one vector
// (|zero * sum| <= 256 * 32 * 127: no overflow).
template <bool kQ8, bool kZ, int P, int TT>
void qpanel_tile(const Weight& w, int n, int lastRows, const MatmulIn& in, int t, float* y, int ldy, const uint8_t* pf) {
  constexpr int kQuantBytes = kQ8 ? 512 : 256, kOffset = kQ8 ? 128 : 8, kHead = kZ ? 64 : 32, kGroupBytes = kHead + kQuantBytes;
  const int nb = groups_of(in.K);
  const size_t pb = size_t(kPanel) * w.rowBytes;
  const uint8_t* base = w.data + size_t(n / kPanel) * pb;
  const ActPair* xr[TT];
  for (int j = 0; j < TT; j++) xr[j] = reinterpret_cast<const ActPair*>(in.xq + size_t(t + j) * in.ldq);
  __m512 acc[P][TT];
  for (int p = 0; p < P; p++)
    for (int j = 0; j < TT; j++) acc[p][j] = _mm512_setzero_ps();
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  for (int g = 0; g < nb; g++) {
    const int h = g & 1;
    if (pf) {
      for (int p = 0; p < P; p++)
        for (int off = g * kGroupBytes; off < (g + 1) * kGroupBytes; off += 64)
          _mm_prefetch(reinterpret_cast<const char*>(pf) + p * pb + off, _MM_HINT_T1);
    }
    // Small tiles (single-sequence decode) split each group's dot products over two int32 chains
    // (even and odd chunks, or low and high nibbles) to halve their latency; the sums are exact, so
    // the split changes no bit of the result.
    constexpr bool kSplit = P * TT <= 8;
    const int32_t* xd[TT];
    __m512i ia[P][TT], ib[P][TT];
    const size_t pairAt = size_t(g >> 1) * 2 * kGroupBytes;
    const int heads = (g | 1) < nb ? 2 : 1;  // an odd last group has one header
    __m512i zv[P];
    if constexpr (kZ)
      for (int p = 0; p < P; p++)
        zv[p] = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + p * pb + pairAt + 32 * heads + 32 * h)));
    for (int j = 0; j < TT; j++) {
      const ActPair& a = xr[j][g >> 1];
      xd[j] = reinterpret_cast<const int32_t*>(a.qs + 32 * h);
      if constexpr (kZ) {
        const __m512i nsum = _mm512_set1_epi32(-a.sum[h]);
        for (int p = 0; p < P; p++) ia[p][j] = _mm512_mullo_epi32(zv[p], nsum);
      } else {
        const __m512i bias = _mm512_set1_epi32(-kOffset * a.sum[h]);
        for (int p = 0; p < P; p++) ia[p][j] = bias;
      }
      if constexpr (kSplit)
        for (int p = 0; p < P; p++) ib[p][j] = _mm512_setzero_si512();
    }
    const uint8_t* q = base + pairAt + heads * kHead + h * kQuantBytes;
    if constexpr (kQ8) {
      for (int c = 0; c < 8; c++) {
        for (int p = 0; p < P; p++) {
          const __m512i wv = _mm512_loadu_si512(q + p * pb + 64 * c);
          for (int j = 0; j < TT; j++) {
            if (kSplit && (c & 1)) ib[p][j] = _mm512_dpbusd_epi32(ib[p][j], wv, _mm512_set1_epi32(xd[j][c]));
            else ia[p][j] = _mm512_dpbusd_epi32(ia[p][j], wv, _mm512_set1_epi32(xd[j][c]));
          }
        }
      }
    } else {
      for (int c = 0; c < 4; c++) {
        for (int p = 0; p < P; p++) {
          const __m512i v = _mm512_loadu_si512(q + p * pb + 64 * c);
          const __m512i lo = _mm512_and_si512(v, low4);
          // split: the high nibbles left in place (16 x their value; the chain is shifted back below)
          const __m512i hi = kSplit ? _mm512_xor_si512(v, lo) : _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
          for (int j = 0; j < TT; j++) {
            ia[p][j] = _mm512_dpbusd_epi32(ia[p][j], lo, _mm512_set1_epi32(xd[j][c]));
            if constexpr (kSplit) ib[p][j] = _mm512_dpbusd_epi32(ib[p][j], hi, _mm512_set1_epi32(xd[j][c + 4]));
            else ia[p][j] = _mm512_dpbusd_epi32(ia[p][j], hi, _mm512_set1_epi32(xd[j][c + 4]));
          }
        }
      }
    }
    if constexpr (kSplit)  // exact: the Q4 high-nibble chain is a multiple of 16
      for (int p = 0; p < P; p++)
        for (int j = 0; j < TT; j++) ia[p][j] = _mm512_add_epi32(ia[p][j], kQ8 ? ib[p][j] : _mm512_srai_epi32(ib[p][j], 4));
    __m512 dw[P];
    for (int p = 0; p < P; p++) dw[p] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + p * pb + pairAt + 32 * h)));
    for (int j = 0; j < TT; j++) {
      const __m512 dx = _mm512_set1_ps(xr[j][g >> 1].d[8 * h]);
      for (int p = 0; p < P; p++) acc[p][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[p][j]), _mm512_mul_ps(dw[p], dx), acc[p][j]);
    }
  }
  for (int j = 0; j < TT; j++) {
    float* yr = y + size_t(t + j) * ldy + n;
    for (int p = 0; p < P - 1; p++) _mm512_storeu_ps(yr + p * kPanel, acc[p][j]);
    _mm512_mask_storeu_ps(yr + (P - 1) * kPanel, head_mask(lastRows), acc[P - 1][j]);
  }
}

using PanelFn = void (*)(const Weight&, int, int, const MatmulIn&, int, float*, int, const uint8_t*);
constexpr int kMaxP = 2, kMaxTT = 6, kPanelTokenBlock = 96;

template <bool kQ8, bool kZ, int P, int... TT>
constexpr auto qpanel_row(std::integer_sequence<int, TT...>) {
  return std::array<PanelFn, kMaxTT>{qpanel_tile<kQ8, kZ, P, TT + 1>...};
}
template <bool kQ8, bool kZ>
struct QPanelTiles {
  static constexpr std::array<std::array<PanelFn, kMaxTT>, kMaxP> fns = {
      qpanel_row<kQ8, kZ, 1>(std::make_integer_sequence<int, kMaxTT>{}), qpanel_row<kQ8, kZ, 2>(std::make_integer_sequence<int, kMaxTT>{})};
};

// Rows [n0, n1), n0 a multiple of 16. Tokens in blocks of 96, split into near-equal tiles.
template <bool kQ8, bool kZ = false>
void run_qpanels(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1) {
  const auto& fns = QPanelTiles<kQ8, kZ>::fns;
  // Up to 8 tokens: one panel at a time, so a thread reads its rows as one sequential stream (what
  // decode of one or a few sequences, bound by memory, runs fastest with); more: 2 panels at a time.
  const int Pmax = in.T <= 8 ? 1 : 2, TTmax = kMaxTT;
  const size_t pb = size_t(kPanel) * w.rowBytes;
  for (int t0 = 0; t0 < in.T; t0 += kPanelTokenBlock) {
    const int t1 = std::min(in.T, t0 + kPanelTokenBlock);
    const int tiles = (t1 - t0 + TTmax - 1) / TTmax;
    for (int n = n0; n < n1; n += Pmax * kPanel) {
      const int rows = std::min(n1 - n, Pmax * kPanel), P = (rows + kPanel - 1) / kPanel;
      const int lastRows = rows - (P - 1) * kPanel;
      const int nn = n + Pmax * kPanel;  // the next tile's panels (as many as this one's; none after the chunk's last)
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
    a.sum[0] = _mm512_mask_reduce_add_epi32(0x00FF, sum4);
    a.sum[1] = _mm512_mask_reduce_add_epi32(0xFF00, sum4);
    std::memset(a.pad, 0, sizeof a.pad);
  }
}

void matmul_quant(const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1) {
  if (w.panels) {
    if (w.type == DType::Q8_0) run_qpanels<true>(w, in, y, ldy, n0, n1);
    else if (w.type == DType::Q4_Z) run_qpanels<false, true>(w, in, y, ldy, n0, n1);
    else if (w.type == DType::Q8_Z) run_qpanels<true, true>(w, in, y, ldy, n0, n1);
    else run_qpanels<false>(w, in, y, ldy, n0, n1);
    return;
  }
  if (w.type == DType::Q4_Z || w.type == DType::Q8_Z) return matmul_z_rows(w, in, y, ldy, n0, n1);
  if (w.type == DType::Q8_0) run_tiles<LoadQ8>(w, in, y, ldy, n0, n1);
  else run_tiles<LoadQ4>(w, in, y, ldy, n0, n1);
}

}  // namespace flotilla::avx512
