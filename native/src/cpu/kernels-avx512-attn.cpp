// AVX-512 attention of one query row of one head over a sequence's paged K/V (CpuKernels::attend),
// for head dims that are whole vectors (16..128). The query and the output accumulator live in
// registers; per group of up to 16 positions (within one block): 16 dot products summed together
// (Sum16), one vector exp, one rescale of the accumulator when the running max moves (online softmax),
// then one FMA per position and vector of V; the next group's rows are prefetched meanwhile.
// Other head dims return false and take attention.cpp's generic loop. int8 rows (kv-type.h) are
// widened to floats in registers; a key's scale multiplies its score once, a value's scale its
// softmax weight once (the weight sum l keeps the unscaled weights).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "avx512-util.h"
#include "kernels-avx512-attn.h"

namespace flotilla::avx512 {

namespace {

constexpr int kMaxHeads = 256;  // attend_heads keeps each head's running max and sum on the stack

template <KvType T>
inline __m512 load_row(const uint8_t* r, int d) {
  if constexpr (T == KvType::F16) return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r) + d));
  else if constexpr (T == KvType::I8) return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r) + d)));
  else return _mm512_loadu_ps(reinterpret_cast<const float*>(r) + 16 * d);
}

// Sums of 16 vectors at once: lane j of the result = the 16-lane sum of a[j]. Adds neighbouring
// vectors' halves level by level (unpack within 128-bit lanes, then 128-bit lanes across vectors), so
// 16 scores cost 30 shuffles and 15 adds where 16 separate hsums cost four times the adds and stall
// on scalar stores. The tree is fixed, so a score does not depend on which positions share its group.
struct Sum16 {
  __m512 s[4];  // after half(): s[k] lane L, element e = the part of a[4k + e] in 128-bit lane L

  // Reduces a[0..7] into s[2h], s[2h + 1] (h = 0: positions 0-7, h = 1: 8-15).
  void half(const __m512* a, int h) {
    __m512 r[4];
    for (int i = 0; i < 4; i++)  // [a0+a2, b0+b2, a1+a3, b1+b3] per 128-bit lane, a = a[2i], b = a[2i+1]
      r[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 2; i++) {  // 64-bit halves: [a, b, c, d] per 128-bit lane
      const __m512d x = _mm512_castps_pd(r[2 * i]), y = _mm512_castps_pd(r[2 * i + 1]);
      s[2 * h + i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
  }

  __m512 total() const {
    const auto pairs = [](__m512 x, __m512 y) {  // [x.L0+L1, x.L2+L3, y.L0+L1, y.L2+L3]
      return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
    };
    return pairs(pairs(s[0], s[1]), pairs(s[2], s[3]));
  }
};

// Where positions p0 .. p0 + 15 (at most to the end of p0's block) start in the pool, and (int8)
// where their scales start: ks - k is the same for every head of a block (head blocks are uniform).
struct Group {
  const uint8_t *k, *v, *ks, *vs;
  int cnt;
};
inline Group group_at(const KvRows& k, const KvRows& v, int p0, int n) {
  const int block = k.table[p0 / k.blockSize], off = p0 % k.blockSize;
  const uint8_t* kb = k.base + size_t(block) * k.blockStride;
  const uint8_t* vb = v.base + size_t(block) * v.blockStride;
  return {kb + size_t(off) * k.rowBytes, vb + size_t(off) * v.rowBytes, kb + k.scaleOffset + size_t(off) * 4,
          vb + v.scaleOffset + size_t(off) * 4, std::min({16, n - p0, k.blockSize - off})};
}
inline Group shifted(const Group& g, size_t off) { return {g.k + off, g.v + off, g.ks + off, g.vs + off, g.cnt}; }

// q . k_j for j < 8 into acc (rows past cnt read as zero scores).
template <int D, KvType T>
inline void dots8(const __m512* qv, const uint8_t* kr, int rowBytes, int j0, int cnt, __m512* acc) {
  for (int j = 0; j < 8; j++) {
    if (j0 + j >= cnt) {
      acc[j] = _mm512_setzero_ps();
      continue;
    }
    const uint8_t* r = kr + size_t(j0 + j) * rowBytes;
    acc[j] = _mm512_mul_ps(qv[0], load_row<T>(r, 0));
    for (int d = 1; d < D; d++) acc[j] = _mm512_fmadd_ps(qv[d], load_row<T>(r, d), acc[j]);
  }
}

// Asks for the next group's K and V rows while this group computes: each block is its own stretch of
// memory (a few KB), too short for the hardware prefetcher to get ahead of, so without this every
// block starts with misses to DRAM and decode attention ran at under half the read bandwidth.
template <KvType T>
inline void prefetch_group(const Group& g, int rowBytes) {
  for (int off = 0; off < g.cnt * rowBytes; off += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(g.k + off), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(g.v + off), _MM_HINT_T0);
  }
  if (T == KvType::I8 && g.cnt > 0) {  // up to 16 scales each: the line of the first and of the last
    for (const uint8_t* s : {g.ks, g.ks + 4 * (g.cnt - 1), g.vs, g.vs + 4 * (g.cnt - 1)})
      _mm_prefetch(reinterpret_cast<const char*>(s), _MM_HINT_T0);
  }
}

// One group of positions for one (query row, head): scores, online-softmax update of the running max
// m, weight sum l and unnormalized output o, then o += p_j v_j.
template <int D, KvType T>
inline void step_group(const __m512* qv, __m512* o, float& m, float& l, const Group& g, int rowBytes, float scale) {
  const uint8_t *kr = g.k, *vr = g.v;
  const int cnt = g.cnt;
  Sum16 sum;
  __m512 acc[8];
  dots8<D, T>(qv, kr, rowBytes, 0, cnt, acc);
  sum.half(acc, 0);
  dots8<D, T>(qv, kr, rowBytes, 8, cnt, acc);
  sum.half(acc, 1);
  const __mmask16 live = head_mask(cnt);
  __m512 sc = _mm512_set1_ps(scale);
  if constexpr (T == KvType::I8) sc = _mm512_mul_ps(_mm512_maskz_loadu_ps(live, g.ks), sc);  // key scale x 1/sqrt(hd)
  const __m512 sv = _mm512_mask_mul_ps(_mm512_set1_ps(-std::numeric_limits<float>::infinity()), live, sum.total(), sc);
  const float bm = std::max(m, _mm512_reduce_max_ps(sv));
  if (bm > m) {
    const float corr = std::exp(m - bm);  // 0 on the first group
    l *= corr;
    for (int d = 0; d < D; d++) o[d] = _mm512_mul_ps(o[d], _mm512_set1_ps(corr));
    m = bm;
  }
  const __m512 pv = _mm512_maskz_mov_ps(live, exp_poly(_mm512_sub_ps(sv, _mm512_set1_ps(m))));
  l += _mm512_reduce_add_ps(pv);
  alignas(64) float p[16];
  if constexpr (T == KvType::I8) _mm512_store_ps(p, _mm512_mul_ps(pv, _mm512_maskz_loadu_ps(live, g.vs)));  // x value scale
  else _mm512_store_ps(p, pv);
  for (int j = 0; j < cnt; j++) {
    const __m512 pj = _mm512_set1_ps(p[j]);
    for (int d = 0; d < D; d++) o[d] = _mm512_fmadd_ps(pj, load_row<T>(vr + size_t(j) * rowBytes, d), o[d]);
  }
}

template <int D, KvType T>
void attend_t(const float* q, const KvRows& k, const KvRows& v, int n, float scale, float* out) {
  __m512 qv[D], o[D];
  for (int d = 0; d < D; d++) qv[d] = _mm512_loadu_ps(q + 16 * d), o[d] = _mm512_setzero_ps();
  float m = -std::numeric_limits<float>::infinity(), l = 0;
  Group g = group_at(k, v, 0, n);
  for (int p0 = 0; p0 < n;) {
    const Group next = p0 + g.cnt < n ? group_at(k, v, p0 + g.cnt, n) : Group{};
    prefetch_group<T>(next, k.rowBytes);
    step_group<D, T>(qv, o, m, l, g, k.rowBytes, scale);
    p0 += g.cnt;
    g = next;
  }
  const __m512 inv = _mm512_set1_ps(1.0f / l);
  for (int d = 0; d < D; d++) _mm512_storeu_ps(out + 16 * d, _mm512_mul_ps(o[d], inv));
}

// Every query head of one row, block by block: within a block the KV heads' rows lie one after
// another (blockSize x rowBytes each), so a group reads all heads' K (then V) as one run of
// nKvHeads x 2-4 KB instead of each head's 2-4 KB from a different place — random pieces that
// small read at well under half the bandwidth of longer runs on the machines measured. Heads of one
// GQA group read the same rows back to back. Each head's state goes through out/m/l between groups;
// the arithmetic per head is attend_t's, so both give the same bits.
template <int D, KvType T>
void attend_heads_t(const float* q, const KvRows& k, const KvRows& v, int nHeads, int group, size_t headStride, int n,
                    float scale, float* out) {
  constexpr int hd = 16 * D;
  float m[kMaxHeads], l[kMaxHeads];
  std::fill_n(m, nHeads, -std::numeric_limits<float>::infinity());
  std::fill_n(l, nHeads, 0.f);
  std::fill_n(out, size_t(nHeads) * hd, 0.f);
  Group g = group_at(k, v, 0, n);
  for (int p0 = 0; p0 < n;) {
    const Group next = p0 + g.cnt < n ? group_at(k, v, p0 + g.cnt, n) : Group{};
    for (int h = 0; h < nHeads; h++) {
      const size_t off = size_t(h / group) * headStride;
      if (h % group == 0 && next.cnt) prefetch_group<T>(shifted(next, off), k.rowBytes);
      __m512 qv[D], o[D];
      for (int d = 0; d < D; d++) qv[d] = _mm512_loadu_ps(q + h * hd + 16 * d), o[d] = _mm512_loadu_ps(out + h * hd + 16 * d);
      step_group<D, T>(qv, o, m[h], l[h], shifted(g, off), k.rowBytes, scale);
      for (int d = 0; d < D; d++) _mm512_storeu_ps(out + h * hd + 16 * d, o[d]);
    }
    p0 += g.cnt;
    g = next;
  }
  for (int h = 0; h < nHeads; h++) {
    const __m512 inv = _mm512_set1_ps(1.0f / l[h]);
    for (int d = 0; d < D; d++) _mm512_storeu_ps(out + h * hd + 16 * d, _mm512_mul_ps(_mm512_loadu_ps(out + h * hd + 16 * d), inv));
  }
}

template <KvType T>
bool attend_f(const float* q, const KvRows& k, const KvRows& v, int n, int hd, float scale, float* out) {
  switch (hd) {
    case 16: return attend_t<1, T>(q, k, v, n, scale, out), true;
    case 32: return attend_t<2, T>(q, k, v, n, scale, out), true;
    case 48: return attend_t<3, T>(q, k, v, n, scale, out), true;
    case 64: return attend_t<4, T>(q, k, v, n, scale, out), true;
    case 80: return attend_t<5, T>(q, k, v, n, scale, out), true;
    case 96: return attend_t<6, T>(q, k, v, n, scale, out), true;
    case 112: return attend_t<7, T>(q, k, v, n, scale, out), true;
    case 128: return attend_t<8, T>(q, k, v, n, scale, out), true;
    default: return false;
  }
}

template <KvType T>
bool attend_heads_f(const float* q, const KvRows& k, const KvRows& v, int nHeads, int group, size_t headStride, int n, int hd,
                    float scale, float* out) {
  if (nHeads > kMaxHeads) return false;
  switch (hd) {
    case 16: return attend_heads_t<1, T>(q, k, v, nHeads, group, headStride, n, scale, out), true;
    case 32: return attend_heads_t<2, T>(q, k, v, nHeads, group, headStride, n, scale, out), true;
    case 48: return attend_heads_t<3, T>(q, k, v, nHeads, group, headStride, n, scale, out), true;
    case 64: return attend_heads_t<4, T>(q, k, v, nHeads, group, headStride, n, scale, out), true;
    case 80: return attend_heads_t<5, T>(q, k, v, nHeads, group, headStride, n, scale, out), true;
    case 96: return attend_heads_t<6, T>(q, k, v, nHeads, group, headStride, n, scale, out), true;
    case 112: return attend_heads_t<7, T>(q, k, v, nHeads, group, headStride, n, scale, out), true;
    case 128: return attend_heads_t<8, T>(q, k, v, nHeads, group, headStride, n, scale, out), true;
    default: return false;
  }
}

}  // namespace

bool attend_heads(const float* q, const KvRows& k, const KvRows& v, int nHeads, int group, size_t headStride, int n, int hd,
                  float scale, float* out) {
  switch (k.type) {
    case KvType::F32: return attend_heads_f<KvType::F32>(q, k, v, nHeads, group, headStride, n, hd, scale, out);
    case KvType::F16: return attend_heads_f<KvType::F16>(q, k, v, nHeads, group, headStride, n, hd, scale, out);
    case KvType::I8: return attend_heads_f<KvType::I8>(q, k, v, nHeads, group, headStride, n, hd, scale, out);
    default: return false;
  }
}

bool attend(const float* q, const KvRows& k, const KvRows& v, int n, int hd, float scale, float* out) {
  switch (k.type) {
    case KvType::F32: return attend_f<KvType::F32>(q, k, v, n, hd, scale, out);
    case KvType::F16: return attend_f<KvType::F16>(q, k, v, n, hd, scale, out);
    case KvType::I8: return attend_f<KvType::I8>(q, k, v, n, hd, scale, out);
    default: return false;
  }
}

}  // namespace flotilla::avx512
