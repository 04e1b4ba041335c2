// Paged attention over the KV pool, and the KV write. Every query row t attends keys 0..positions[t]
// of its sequence through the block table (the cached prefix included), with an online softmax over
// key tiles of KT absolute positions. Decode rows (one query) take a split-K kernel: one warp per
// (row, head, split of kSplitLen keys), partials merged by a second kernel when a row has more than
// one split. Prefill chunks take a FlashAttention-style kernel: a tile of up to 16 query rows of one
// sequence and one head, K/V tiles staged in shared memory, causal by position. Both kernels walk a
// row's keys with the same tiles and the same arithmetic, so a row of at most kSplitLen keys gets the
// same bits whichever kernel (and whatever batch) it ran in.
#include <cuda_fp8.h>

#include "kernels.cuh"

namespace flotilla {
namespace cuda {

namespace {

// Element index of (block, head, offset, d) within one K or V plane of a layer.
__device__ __forceinline__ size_t kv_index(const KvView& kv, int block, int head, int off, int d) {
  return ((size_t(block) * kv.nKv + head) * kv.blockSize + off) * kv.hd + d;
}

// Element (block, head, off, d) of plane kv (0 K, 1 V) of the layer starting at `layer`, as f32 (fp8
// times its row's scale).
template <KvType T>
__device__ __forceinline__ float kv_load(const KvView& kv, const char* layer, int plane, int block, int head, int off, int d) {
  const size_t i = plane * (kv.layerStride() / 2) + kv_index(kv, block, head, off, d);
  if constexpr (T == KvType::F16) return __half2float(reinterpret_cast<const __half*>(layer)[i]);
  else if constexpr (T == KvType::Fp8) {
    const float* scales = reinterpret_cast<const float*>(layer + kv.layerStride());
    const float sc = scales[plane * kv.rowsPerPlane() + (size_t(block) * kv.nKv + head) * kv.blockSize + off];
    const __half h(__nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(layer[i]), __NV_E4M3));
    return __half2float(h) * sc;
  } else return reinterpret_cast<const float*>(layer)[i];
}

// grid (T), block 128: k, v (T, nKv*hd) into the slots.
template <KvType T>
__global__ void kv_write_kernel(KvView kv, int layer, const float* k, const float* v, const int32_t* slots) {
  const int t = blockIdx.x, slot = slots[t];
  if (slot < 0) return;
  const int block = slot / kv.blockSize, off = slot % kv.blockSize, width = kv.nKv * kv.hd;
  const size_t plane = kv.layerStride() / 2;
  char* base = static_cast<char*>(kv.base) + kv.layerBytes() * layer;
  if constexpr (T == KvType::Fp8) {  // one warp per (K|V, head): the row's max|x|, its scale, then e4m3 codes
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    float* scales = reinterpret_cast<float*>(base + kv.layerStride());
    for (int w = warp; w < 2 * kv.nKv; w += warps) {
      const int pl = w / kv.nKv, h = w % kv.nKv;
      const float* x = (pl ? v : k) + size_t(t) * width + size_t(h) * kv.hd;
      float amax = 0.f;
      for (int d = lane; d < kv.hd; d += 32) amax = fmaxf(amax, fabsf(x[d]));
      amax = warp_max(amax);
      const float inv = amax > 0.f ? 448.f / amax : 0.f;
      for (int d = lane; d < kv.hd; d += 32)
        reinterpret_cast<__nv_fp8_storage_t*>(base)[pl * plane + kv_index(kv, block, h, off, d)] =
            __nv_cvt_float_to_fp8(x[d] * inv, __NV_SATFINITE, __NV_E4M3);
      if (lane == 0) scales[pl * kv.rowsPerPlane() + (size_t(block) * kv.nKv + h) * kv.blockSize + off] = amax / 448.f;
    }
  } else {
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
      const size_t at = kv_index(kv, block, i / kv.hd, off, i % kv.hd);
      if constexpr (T == KvType::F16) {
        reinterpret_cast<__half*>(base)[at] = __float2half_rn(k[size_t(t) * width + i]);
        reinterpret_cast<__half*>(base)[plane + at] = __float2half_rn(v[size_t(t) * width + i]);
      } else {
        reinterpret_cast<float*>(base)[at] = k[size_t(t) * width + i];
        reinterpret_cast<float*>(base)[plane + at] = v[size_t(t) * width + i];
      }
    }
  }
}

// Online-softmax state of one query row held by one warp: lane holds output dims lane + 32*i.
template <int DPL>
struct RowState {
  float m = -INFINITY, l = 0.f, o[DPL];
  __device__ RowState() {
#pragma unroll
    for (int i = 0; i < DPL; i++) o[i] = 0.f;
  }
  // s: this lane's key score (-inf when masked); vrow(j, d): value j at dim d.
  template <class V>
  __device__ __forceinline__ void update(float s, int kt, int hd, V vrow) {
    const float mNew = fmaxf(m, warp_max(s));
    if (mNew == -INFINITY) return;  // every key of the tile is masked for this row
    const float corr = expf(m - mNew), p = s == -INFINITY ? 0.f : expf(s - mNew);
    l = l * corr + warp_sum(p);
#pragma unroll
    for (int i = 0; i < DPL; i++) o[i] *= corr;
    for (int j = 0; j < kt; j++) {
      const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
      for (int i = 0; i < DPL; i++) {
        const int d = threadIdx.x % 32 + 32 * i;
        if (d < hd) o[i] = fmaf(pj, vrow(j, d), o[i]);
      }
    }
    m = mNew;
  }
};

__device__ __forceinline__ float dot_row(const float* q, const float* k, int hd) {
  float acc = 0.f;
  for (int d = 0; d < hd; d++) acc = fmaf(q[d], k[d], acc);
  return acc;
}

constexpr int kTileKeys = 32;  // KT: keys per tile in both kernels

// Warps (heads) per decode block, keeping the staged key tiles within 48 KB of shared memory.
template <int DPL>
__host__ __device__ constexpr int decode_warps() { return DPL >= 8 ? 1 : DPL >= 4 ? 2 : 4; }

// grid (numDecode, ceil(nHeads/W), maxSplits), block 32*W: warp w takes head blockIdx.y*W + w.
// Writes out directly for a single-split row, else partial (m, l, o[hd]) for the combine kernel.
template <int DPL, KvType T>
__global__ void decode_kernel(KvView kv, int layer, AttnPlan p, const float* q, float* out, int nHeads) {
  constexpr int W = decode_warps<DPL>();
  __shared__ float qs[W][32 * DPL];
  __shared__ float ks[W][kTileKeys][32 * DPL + 1];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, hd = kv.hd;
  const int head = blockIdx.y * W + warp, split = blockIdx.z;
  const int row = p.decodeRows[blockIdx.x], n = p.positions[row] + 1;
  const int start = split * kSplitLen, nSplits = (n + kSplitLen - 1) / kSplitLen;
  if (head >= nHeads || start >= n) return;
  const int end = min(n, start + kSplitLen), kvHead = head / (nHeads / kv.nKv);
  const int32_t* table = p.blockTables + size_t(p.rowSeq[row]) * p.maxBlocksPerSeq;
  const char* K = static_cast<const char*>(kv.base) + kv.layerBytes() * layer;
  const float* qh = q + (size_t(row) * nHeads + head) * hd;
  for (int d = lane; d < hd; d += 32) qs[warp][d] = qh[d];
  const float scale = rsqrtf(float(hd));
  RowState<DPL> st;
  for (int k0 = start; k0 < end; k0 += kTileKeys) {
    const int kt = min(kTileKeys, end - k0);
    __syncwarp();
    for (int i = lane; i < kt * hd; i += 32) {  // stage this tile's keys, coalesced within each key row
      const int j = i / hd, d = i % hd, kp = k0 + j;
      ks[warp][j][d] = kv_load<T>(kv, K, 0, table[kp / kv.blockSize], kvHead, kp % kv.blockSize, d);
    }
    __syncwarp();
    const float s = lane < kt ? dot_row(qs[warp], ks[warp][lane], hd) * scale : -INFINITY;
    st.update(s, kt, hd, [&](int j, int d) {
      const int kp = k0 + j;
      return kv_load<T>(kv, K, 1, table[kp / kv.blockSize], kvHead, kp % kv.blockSize, d);
    });
  }
  if (nSplits == 1) {
    const float inv = 1.0f / st.l;
#pragma unroll
    for (int i = 0; i < DPL; i++) {
      const int d = lane + 32 * i;
      if (d < hd) out[(size_t(row) * nHeads + head) * hd + d] = st.o[i] * inv;
    }
    return;
  }
  float* part = p.partial + ((size_t(blockIdx.x) * nHeads + head) * p.maxSplits + split) * (hd + 2);
  if (lane == 0) part[0] = st.m, part[1] = st.l;
#pragma unroll
  for (int i = 0; i < DPL; i++) {
    const int d = lane + 32 * i;
    if (d < hd) part[2 + d] = st.o[i];
  }
}

// grid (numDecode, nHeads), block 128: merges the splits of rows with more than one.
__global__ void combine_kernel(AttnPlan p, float* out, int nHeads, int hd) {
  const int row = p.decodeRows[blockIdx.x], head = blockIdx.y, n = p.positions[row] + 1;
  const int nSplits = (n + kSplitLen - 1) / kSplitLen;
  if (nSplits == 1) return;
  const float* part = p.partial + (size_t(blockIdx.x) * nHeads + head) * p.maxSplits * (hd + 2);
  float M = -INFINITY;
  for (int s = 0; s < nSplits; s++) M = fmaxf(M, part[s * (hd + 2)]);
  float L = 0.f;
  for (int s = 0; s < nSplits; s++) L += part[s * (hd + 2) + 1] * expf(part[s * (hd + 2)] - M);
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float acc = 0.f;
    for (int s = 0; s < nSplits; s++) acc += part[s * (hd + 2) + 2 + d] * expf(part[s * (hd + 2)] - M);
    out[(size_t(row) * nHeads + head) * hd + d] = acc / L;
  }
}

// grid (numTiles, nHeads), block 128 (4 warps x 4 query rows), dynamic shared memory:
// Q (16, hd), K (KT, hd+1), V (KT, hd) as f32.
template <int DPL, KvType T>
__global__ void prefill_kernel(KvView kv, int layer, AttnPlan p, const float* q, float* out, int nHeads) {
  extern __shared__ float smem[];
  const int hd = kv.hd, head = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int r0 = p.tiles[2 * blockIdx.x], count = p.tiles[2 * blockIdx.x + 1];
  float* Q = smem;
  float* Ks = Q + kPrefillTile * hd;
  float* Vs = Ks + kTileKeys * (hd + 1);
  const int kvHead = head / (nHeads / kv.nKv);
  const int32_t* table = p.blockTables + size_t(p.rowSeq[r0]) * p.maxBlocksPerSeq;
  const char* K = static_cast<const char*>(kv.base) + kv.layerBytes() * layer;
  for (int i = threadIdx.x; i < count * hd; i += blockDim.x)
    Q[i] = q[(size_t(r0 + i / hd) * nHeads + head) * hd + i % hd];
  int pos[4], last = 0;
#pragma unroll
  for (int r = 0; r < 4; r++) {
    const int ri = warp * 4 + r;
    pos[r] = ri < count ? p.positions[r0 + ri] : -1;
  }
  for (int r = 0; r < count; r++) last = max(last, p.positions[r0 + r]);
  const float scale = rsqrtf(float(hd));
  RowState<DPL> st[4];
  for (int k0 = 0; k0 <= last; k0 += kTileKeys) {
    const int kt = min(kTileKeys, last + 1 - k0);
    __syncthreads();
    for (int i = threadIdx.x; i < kt * hd; i += blockDim.x) {
      const int j = i / hd, d = i % hd, kp = k0 + j;
      const int blk = table[kp / kv.blockSize], off = kp % kv.blockSize;
      Ks[j * (hd + 1) + d] = kv_load<T>(kv, K, 0, blk, kvHead, off, d);
      Vs[j * hd + d] = kv_load<T>(kv, K, 1, blk, kvHead, off, d);
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < 4; r++) {
      if (pos[r] < k0) continue;  // warp-uniform: this row sees none of the tile
      const int n = min(kt, pos[r] + 1 - k0);
      const float s = lane < n ? dot_row(Q + (warp * 4 + r) * hd, Ks + lane * (hd + 1), hd) * scale : -INFINITY;
      st[r].update(s, n, hd, [&](int j, int d) { return Vs[j * hd + d]; });
    }
  }
#pragma unroll
  for (int r = 0; r < 4; r++) {
    if (pos[r] < 0) continue;
    const float inv = 1.0f / st[r].l;
    const size_t o = (size_t(r0 + warp * 4 + r) * nHeads + head) * hd;
#pragma unroll
    for (int i = 0; i < DPL; i++) {
      const int d = lane + 32 * i;
      if (d < hd) out[o + d] = st[r].o[i] * inv;
    }
  }
}

template <int DPL, KvType T>
void launch(const KvView& kv, int layer, const AttnPlan& p, const float* q, float* out, int nHeads, cudaStream_t s) {
  if (p.numDecode > 0) {
    constexpr int W = decode_warps<DPL>();
    decode_kernel<DPL, T><<<dim3(p.numDecode, (nHeads + W - 1) / W, p.maxSplits), 32 * W, 0, s>>>(kv, layer, p, q, out, nHeads);
    FL_LAUNCHED("attention decode");
    if (p.maxSplits > 1) {
      combine_kernel<<<dim3(p.numDecode, nHeads), 128, 0, s>>>(p, out, nHeads, kv.hd);
      FL_LAUNCHED("attention combine");
    }
  }
  if (p.numTiles > 0) {
    const int bytes = (kPrefillTile * kv.hd + kTileKeys * (kv.hd + 1) + kTileKeys * kv.hd) * 4;
    static bool raised = false;  // per instantiation; set once before the first launch (not in a capture)
    if (!raised && bytes > 48 * 1024) {
      FL_CUDA(cudaFuncSetAttribute(prefill_kernel<DPL, T>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
      raised = true;
    }
    prefill_kernel<DPL, T><<<dim3(p.numTiles, nHeads), 128, bytes, s>>>(kv, layer, p, q, out, nHeads);
    FL_LAUNCHED("attention prefill");
  }
}

template <KvType T>
void dispatch(const KvView& kv, int layer, const AttnPlan& p, const float* q, float* out, int nHeads, cudaStream_t s) {
  if (kv.hd <= 32) launch<1, T>(kv, layer, p, q, out, nHeads, s);
  else if (kv.hd <= 64) launch<2, T>(kv, layer, p, q, out, nHeads, s);
  else if (kv.hd <= 128) launch<4, T>(kv, layer, p, q, out, nHeads, s);
  else launch<8, T>(kv, layer, p, q, out, nHeads, s);  // hd <= 256, checked at load
}

}  // namespace

void kv_write(const KvView& kv, int layer, const float* k, const float* v, const int32_t* slots, int T, cudaStream_t s) {
  if (kv.type == KvType::F16) kv_write_kernel<KvType::F16><<<T, 128, 0, s>>>(kv, layer, k, v, slots);
  else if (kv.type == KvType::Fp8) kv_write_kernel<KvType::Fp8><<<T, 128, 0, s>>>(kv, layer, k, v, slots);
  else kv_write_kernel<KvType::F32><<<T, 128, 0, s>>>(kv, layer, k, v, slots);
  FL_LAUNCHED("kv_write");
}

void attention(const KvView& kv, int layer, const AttnPlan& p, const float* q, float* out, int nHeads, cudaStream_t s) {
  if (kv.type == KvType::F16) dispatch<KvType::F16>(kv, layer, p, q, out, nHeads, s);
  else if (kv.type == KvType::Fp8) dispatch<KvType::Fp8>(kv, layer, p, q, out, nHeads, s);
  else dispatch<KvType::F32>(kv, layer, p, q, out, nHeads, s);
}

}  // namespace cuda
}  // namespace flotilla
