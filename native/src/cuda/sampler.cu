// Sampling on the device with core/sampler.cpp's semantics: one block per sampled row applies the
// penalties (vLLM's meaning), takes log-softmax, and draws with temperature / top-k / top-p / min-p
// from uniform(seed, position). Top-k and top-p narrow the candidates to {p >= threshold} (radix
// select on the float bits for k, bisection for p); the candidates are sorted in shared memory
// (prob desc, id asc) and thread 0 runs the CPU's exact loop over them. More than kSampleCap
// candidates sets fallback[row] and the host samples that row with the CPU sampler instead.
#include "kernels.cuh"

namespace flotilla {
namespace cuda {

namespace {

constexpr int kThreads = 512;

__device__ __forceinline__ double uniform(uint32_t seed, int32_t position) {
  uint64_t x = (uint64_t(seed) << 32) | uint32_t(position);
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
  return double(x >> 11) * (1.0 / 9007199254740992.0);
}

// (value desc, id asc) order: is (v, i) before (bv, bi)?
__device__ __forceinline__ bool before(float v, int i, float bv, int bi) { return v > bv || (v == bv && i < bi); }

struct Shared {
  float redV[32];
  int redI[32];
  double redD[kThreads];
  double target;
  unsigned hist[256];
  int count, token;
  float candP[kSampleCap];
  int candI[kSampleCap];
};

// The first element in (value desc, id asc) order among `keep(j)`; all threads get it.
template <class Keep>
__device__ void block_best(const float* v, int V, Keep keep, Shared& sh, float* outV, int* outI) {
  float bv = -INFINITY;
  int bi = INT_MAX;
  for (int j = threadIdx.x; j < V; j += blockDim.x)
    if (keep(j) && before(v[j], j, bv, bi)) bv = v[j], bi = j;
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (before(ov, oi, bv, bi)) bv = ov, bi = oi;
  }
  __syncthreads();
  if (threadIdx.x % 32 == 0) sh.redV[threadIdx.x / 32] = bv, sh.redI[threadIdx.x / 32] = bi;
  __syncthreads();
  bv = -INFINITY, bi = INT_MAX;
  for (int w = 0; w < int(blockDim.x / 32); w++)
    if (before(sh.redV[w], sh.redI[w], bv, bi)) bv = sh.redV[w], bi = sh.redI[w];
  *outV = bv, *outI = bi;
}

__device__ double block_sum_d(double v, Shared& sh) {
  __syncthreads();
  sh.redD[threadIdx.x] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    double s = 0;
    for (int i = 0; i < int(blockDim.x); i++) s += sh.redD[i];
    sh.redD[0] = s;
  }
  __syncthreads();
  return sh.redD[0];
}

// Sum of probs >= u (as float bits) over ids that pass `in`.
template <class In>
__device__ double mass_at_least(const float* P, int V, uint32_t u, In in, Shared& sh) {
  double s = 0;
  for (int j = threadIdx.x; j < V; j += blockDim.x)
    if (__float_as_uint(P[j]) >= u && in(j)) s += P[j];
  return block_sum_d(s, sh);
}

__global__ void __launch_bounds__(kThreads) sample_kernel(SampleArgs a) {
  extern __shared__ __align__(16) unsigned char raw[];
  Shared& sh = *reinterpret_cast<Shared*>(raw);
  const int r = blockIdx.x, s = a.rowSeq[r], V = a.vocab, tid = threadIdx.x;
  const float* L = a.logits + size_t(r) * V;
  float* W = a.work + size_t(r) * V;
  float* P = a.probs + size_t(r) * V;
  int32_t* C = a.counts + size_t(r) * V;
  for (int j = tid; j < V; j += blockDim.x) W[j] = L[j];
  {  // logit bias, each id once per sequence (so no two threads write one entry), before penalties as on the CPU
    const int b0 = a.biasOffsets[s], b1 = a.biasOffsets[s + 1];
    if (b1 > b0) {
      __syncthreads();
      for (int j = b0 + tid; j < b1; j += blockDim.x) W[a.biasTokens[j]] = __fadd_rn(W[a.biasTokens[j]], a.biasValues[j]);
    }
  }
  // penalties: counts of output tokens, then the first thread to claim a token applies both
  const float rp = a.repetition[s], pp = a.presence[s], fp = a.frequency[s];
  const bool rep = rp != 1.f, out = pp != 0.f || fp != 0.f;
  if (rep || out) {
    const int32_t* toks = a.penaltyTokens + a.penaltyOffsets[s];
    const int n = a.penaltyOffsets[s + 1] - a.penaltyOffsets[s], np = a.promptLens[s];
    __syncthreads();
    for (int j = np + tid; j < n; j += blockDim.x) atomicAdd(&C[toks[j]], 1);
    __syncthreads();
    for (int j = tid; j < n; j += blockDim.x) {
      const int t = toks[j], old = atomicOr(&C[t], 1 << 30);
      if (old & (1 << 30)) continue;
      float v = W[t];
      if (rep) v = v > 0 ? __fdiv_rn(v, rp) : __fmul_rn(v, rp);
      if (out && old > 0) v = __fsub_rn(v, __fadd_rn(__fmul_rn(fp, float(old)), pp));
      W[t] = v;
    }
    __syncthreads();
    for (int j = tid; j < n; j += blockDim.x) C[toks[j]] = 0;
  }
  {  // guided decoding: ids outside the sequence's allowed-token mask get -inf, after bias and penalties as on the CPU
    const int m0 = a.tokenMaskOffsets[s];
    if (m0 >= 0) {
      __syncthreads();  // bias and penalty writes (any id, from any thread) land first
      const uint32_t* M = a.tokenMask + m0;
      for (int j = tid; j < V; j += blockDim.x)
        if (!((M[j >> 5] >> (j & 31)) & 1u)) W[j] = __int_as_float(0xff800000);
    }
  }
  __syncthreads();
  float maxV;
  int best;
  block_best(W, V, [](int) { return true; }, sh, &maxV, &best);
  double e = 0;
  for (int j = tid; j < V; j += blockDim.x) e += exp(double(W[j] - maxV));
  const float lse = maxV + float(log(block_sum_d(e, sh)));
  int token = best;
  const float temp = a.temperature[s];
  if (temp > 0) {
    const double invT = 1.0 / temp;
    for (int j = tid; j < V; j += blockDim.x) P[j] = float(exp((double(W[j]) - maxV) * invT));
    const int k = a.topK[s];
    const bool useK = k > 0 && k < V;
    const float topP = a.topP[s], floorP = a.minP[s] * 1.0f;
    const uint32_t pos = uint32_t(a.rowPos[r]);
    const double u = uniform(a.seeds[s], int32_t(pos));
    __syncthreads();
    if (!useK && !(topP < 1.f)) {
      // draw over all ids in id order (the CPU's order when nothing sorts): chunked prefix sums
      const int chunk = (V + blockDim.x - 1) / blockDim.x, j0 = tid * chunk, j1 = min(V, j0 + chunk);
      double local = 0;
      int lastHere = -1;
      for (int j = j0; j < j1; j++)
        if (P[j] >= floorP) local += P[j], lastHere = j;
      if (tid == 0) sh.token = -1;
      sh.redD[tid] = local;
      __syncthreads();
      if (tid == 0) {
        double run = 0;
        for (int i = 0; i < int(blockDim.x); i++) {
          const double x = sh.redD[i];
          sh.redD[i] = run;
          run += x;
        }
        sh.target = run * u;
      }
      __syncthreads();
      const double target = sh.target;
      double cum = sh.redD[tid];
      if (cum <= target && target < cum + local) {
        for (int j = j0; j < j1; j++) {
          if (P[j] < floorP) continue;
          cum += P[j];
          if (cum > target) {
            sh.token = j;
            break;
          }
        }
      }
      __syncthreads();
      token = sh.token;
      if (token < 0) {  // rounding put the target past the end: the CPU returns the last counted id
        int lastAll = lastHere;
        for (int o = 16; o > 0; o >>= 1) lastAll = max(lastAll, __shfl_xor_sync(0xffffffffu, lastAll, o));
        if (tid % 32 == 0) atomicMax(&sh.token, lastAll);
        __syncthreads();
        token = max(sh.token, best);
      }
    } else {
      // threshold tk: the k-th largest prob (radix select over the float bits, 8 bits a pass)
      uint32_t prefix = 0, mask = 0;
      int remaining = useK ? k : 0;
      if (useK) {
        for (int shift = 24; shift >= 0; shift -= 8) {
          for (int i = tid; i < 256; i += blockDim.x) sh.hist[i] = 0;
          __syncthreads();
          for (int j = tid; j < V; j += blockDim.x) {
            const uint32_t b = __float_as_uint(P[j]);
            if ((b & mask) == prefix) atomicAdd(&sh.hist[(b >> shift) & 255u], 1u);
          }
          __syncthreads();
          int bin = 255;
          for (; bin > 0 && int(sh.hist[bin]) < remaining; bin--) remaining -= sh.hist[bin];
          prefix |= uint32_t(bin) << shift, mask |= 255u << shift;
          __syncthreads();
        }
      }
      const uint32_t tk = useK ? prefix : 0u;
      const float tkf = __uint_as_float(tk);
      auto inK = [&](int) { return true; };
      double massK = mass_at_least(P, V, useK ? tk + 1 : 0u, inK, sh);
      if (useK) massK += double(remaining) * tkf;
      uint32_t thr = tk;
      if (topP < 1.f) {  // bisect the largest threshold whose mass (within the top k) reaches topP
        const double goal = fmin(double(topP) * massK * (1 + 1e-6), massK);
        uint32_t lo = tk, hi = 0x7f800000u;
        while (lo < hi) {
          const uint32_t mid = lo + (hi - lo + 1) / 2;
          if (mass_at_least(P, V, mid, inK, sh) >= goal) lo = mid;
          else hi = mid - 1;
        }
        thr = max(lo, tk);
      }
      if (tid == 0) sh.count = 0;
      __syncthreads();
      for (int j = tid; j < V; j += blockDim.x) {
        if (__float_as_uint(P[j]) < thr) continue;
        const int at = atomicAdd(&sh.count, 1);
        if (at < kSampleCap) sh.candP[at] = P[j], sh.candI[at] = j;
      }
      __syncthreads();
      const int n = sh.count;
      if (n > kSampleCap) {
        if (tid == 0) a.fallback[r] = 1;
        return;
      }
      int size = 1;
      while (size < n) size <<= 1;
      for (int i = n + tid; i < size; i += blockDim.x) sh.candP[i] = -1.f, sh.candI[i] = INT_MAX;
      for (int kk = 2; kk <= size; kk <<= 1) {  // bitonic sort, (prob desc, id asc)
        for (int jj = kk >> 1; jj > 0; jj >>= 1) {
          __syncthreads();
          for (int i = tid; i < size; i += blockDim.x) {
            const int l = i ^ jj;
            if (l <= i) continue;
            const bool up = (i & kk) == 0;
            const bool lFirst = before(sh.candP[l], sh.candI[l], sh.candP[i], sh.candI[i]);
            if (lFirst == up) {
              const float tp = sh.candP[i];
              const int ti = sh.candI[i];
              sh.candP[i] = sh.candP[l], sh.candI[i] = sh.candI[l];
              sh.candP[l] = tp, sh.candI[l] = ti;
            }
          }
        }
      }
      __syncthreads();
      if (tid == 0) {  // core/sampler.cpp's loop over the sorted candidates
        int m = useK ? min(n, k) : n;
        if (topP < 1.f) {
          double mass = 0, cum = 0;
          if (useK) {
            for (int i = 0; i < m; i++) mass += sh.candP[i];
          } else {
            mass = massK;
          }
          int keep = 0;
          while (keep < m && cum < topP * mass) cum += sh.candP[keep++];
          m = max(keep, 1);
        }
        double total = 0;
        for (int i = 0; i < m; i++)
          if (sh.candP[i] >= floorP) total += sh.candP[i];
        const double target = u * total;
        double cum = 0;
        int last = sh.candI[0], pick = -1;
        for (int i = 0; i < m && pick < 0; i++) {
          if (sh.candP[i] < floorP) continue;
          cum += sh.candP[i];
          last = sh.candI[i];
          if (cum > target) pick = sh.candI[i];
        }
        sh.token = pick >= 0 ? pick : last;
      }
      __syncthreads();
      token = sh.token;
    }
  }
  if (tid == 0) {
    a.tokens[s] = token;
    a.logprobs[s] = W[token] - lse;
    a.fallback[r] = 0;
  }
  const int nl = min(a.numLogprobs[s], V);
  float pv = INFINITY;
  int pi = -1;
  for (int i = 0; i < nl; i++) {  // the next best strictly after the previous pick
    float bv;
    int bi;
    block_best(W, V, [&](int j) { return before(pv, pi, W[j], j); }, sh, &bv, &bi);
    if (tid == 0) a.topIds[size_t(s) * a.topKWidth + i] = bi, a.topLogprobs[size_t(s) * a.topKWidth + i] = bv - lse;
    pv = bv, pi = bi;
  }
}

}  // namespace

void sample(const SampleArgs& a, cudaStream_t s) {
  if (a.R == 0) return;
  static bool raised = false;
  if (!raised) {
    FL_CUDA(cudaFuncSetAttribute(sample_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(sizeof(Shared))));
    raised = true;
  }
  sample_kernel<<<a.R, kThreads, sizeof(Shared), s>>>(a);
  FL_LAUNCHED("sample");
}

}  // namespace cuda
}  // namespace flotilla
