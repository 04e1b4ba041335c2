// AVX-512 attention of one query row of one head over a sequence's paged K/V (CpuKernels::attend),
// for head dims that are whole vectors (16..128). The query and the output accumulator live in
// registers; per group of up to 16 positions: 16 dot products, one vector exp, one rescale of the
// accumulator when the running max moves (online softmax), then one FMA per position and vector of V.
// Other head dims return false and take attention.cpp's generic loop.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "avx512-util.h"
#include "kernels-avx512-attn.h"

namespace flotilla::avx512 {

namespace {

// 2^x = 2^n * 2^f (n = round(x), |f| <= 0.5) with 2^f by its degree-6 Taylor polynomial (relative
// error < 2e-7); exp(x) = 2^(x log2 e). Inputs here are <= 0; scalef takes large negatives to 0.
inline __m512 exp_ps(__m512 x) {
  const __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(1.5252734e-5f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.5403530e-4f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504109e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022651e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

template <bool F16>
inline __m512 load_row(const uint8_t* r, int d) {
  if constexpr (F16) return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r) + d));
  else return _mm512_loadu_ps(reinterpret_cast<const float*>(r) + 16 * d);
}

template <int D, bool F16>
void attend_t(const float* q, const KvRows& k, const KvRows& v, int n, float scale, float* out) {
  __m512 qv[D], o[D];
  for (int d = 0; d < D; d++) qv[d] = _mm512_loadu_ps(q + 16 * d), o[d] = _mm512_setzero_ps();
  float m = -std::numeric_limits<float>::infinity(), l = 0;
  alignas(64) float s[16];
  for (int p0 = 0; p0 < n;) {
    const int block = k.table[p0 / k.blockSize], off = p0 % k.blockSize;
    const int cnt = std::min({16, n - p0, k.blockSize - off});
    const uint8_t* kr = k.base + size_t(block) * k.blockStride + size_t(off) * k.rowBytes;
    const uint8_t* vr = v.base + size_t(block) * v.blockStride + size_t(off) * v.rowBytes;
    for (int j = 0; j < cnt; j++) {
      __m512 acc = _mm512_mul_ps(qv[0], load_row<F16>(kr + size_t(j) * k.rowBytes, 0));
      for (int d = 1; d < D; d++) acc = _mm512_fmadd_ps(qv[d], load_row<F16>(kr + size_t(j) * k.rowBytes, d), acc);
      s[j] = hsum(acc);
    }
    const __mmask16 live = head_mask(cnt);
    const __m512 sv = _mm512_mask_mul_ps(_mm512_set1_ps(-std::numeric_limits<float>::infinity()), live, _mm512_load_ps(s), _mm512_set1_ps(scale));
    const float bm = std::max(m, _mm512_reduce_max_ps(sv));
    if (bm > m) {
      const float corr = std::exp(m - bm);  // 0 on the first group
      l *= corr;
      for (int d = 0; d < D; d++) o[d] = _mm512_mul_ps(o[d], _mm512_set1_ps(corr));
      m = bm;
    }
    const __m512 pv = _mm512_maskz_mov_ps(live, exp_ps(_mm512_sub_ps(sv, _mm512_set1_ps(m))));
    l += _mm512_reduce_add_ps(pv);
    _mm512_store_ps(s, pv);
    for (int j = 0; j < cnt; j++) {
      const __m512 pj = _mm512_set1_ps(s[j]);
      for (int d = 0; d < D; d++) o[d] = _mm512_fmadd_ps(pj, load_row<F16>(vr + size_t(j) * v.rowBytes, d), o[d]);
    }
    p0 += cnt;
  }
  const __m512 inv = _mm512_set1_ps(1.0f / l);
  for (int d = 0; d < D; d++) _mm512_storeu_ps(out + 16 * d, _mm512_mul_ps(o[d], inv));
}

template <bool F16>
bool attend_f(const float* q, const KvRows& k, const KvRows& v, int n, int hd, float scale, float* out) {
  switch (hd) {
    case 16: return attend_t<1, F16>(q, k, v, n, scale, out), true;
    case 32: return attend_t<2, F16>(q, k, v, n, scale, out), true;
    case 48: return attend_t<3, F16>(q, k, v, n, scale, out), true;
    case 64: return attend_t<4, F16>(q, k, v, n, scale, out), true;
    case 80: return attend_t<5, F16>(q, k, v, n, scale, out), true;
    case 96: return attend_t<6, F16>(q, k, v, n, scale, out), true;
    case 112: return attend_t<7, F16>(q, k, v, n, scale, out), true;
    case 128: return attend_t<8, F16>(q, k, v, n, scale, out), true;
    default: return false;
  }
}

}  // namespace

bool attend(const float* q, const KvRows& k, const KvRows& v, int n, int hd, float scale, float* out) {
  return k.f16 ? attend_f<true>(q, k, v, n, hd, scale, out) : attend_f<false>(q, k, v, n, hd, scale, out);
}

}  // namespace flotilla::avx512
