#include "kv-cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "thread-pool.h"

namespace flotilla {

uint64_t KvCache::bytes_per_block(const ModelConfig& c, int blockSize, KvType type) {
  return uint64_t(c.nLayers) * 2 * c.nKvHeads * kv_head_block_bytes(type, blockSize, c.headDim());
}

namespace {

// A pool item writes this many tokens (a few KB each): enough to outweigh claiming it. Fewer tokens
// than two items are written by the caller alone.
constexpr int kTokensPerItem = 8;

}  // namespace

KvCache::KvCache(const ModelConfig& c, int numBlocks, int blockSize, KvType type, ToF16 toF16)
    : nLayers_(c.nLayers),
      numBlocks_(numBlocks),
      blockSize_(blockSize),
      nKv_(c.nKvHeads),
      headDim_(c.headDim()),
      type_(type),
      toF16_(toF16),
      headBytes_(size_t(c.headDim()) * kv_elem_bytes(type)),
      headBlockBytes_(kv_head_block_bytes(type, blockSize, c.headDim())),
      // not zero-filled here: prefault() does it in parallel (a serial memset of GBs takes seconds)
      buf_(bytes_per_block(c, blockSize, type) * numBlocks, "the KV cache", false) {}

void KvCache::prefault(ThreadPool& pool) {
  constexpr size_t kChunk = size_t(16) << 20;
  const size_t n = (buf_.size() + kChunk - 1) / kChunk;
  pool.parallel_for(static_cast<int>(n), [&](int i) {
    const size_t at = size_t(i) * kChunk;
    std::memset(buf_.data() + at, 0, std::min(kChunk, buf_.size() - at));
  });
}

// Symmetric int8 of one row with its own scale (kv-type.h says why per row): q = round(x * 127 / max|x|),
// x ~= q * max|x| / 127. Plain C++ on purpose: every kernel set then reads the same bytes.
void quantize_row_i8(const float* x, int n, int8_t* q, float* scale) {
  float amax = 0;
  for (int i = 0; i < n; i++) amax = std::max(amax, std::fabs(x[i]));
  const float inv = amax > 0 ? 127.f / amax : 0.f;
  *scale = amax / 127.f;
  for (int i = 0; i < n; i++) q[i] = static_cast<int8_t>(std::clamp(std::nearbyint(x[i] * inv), -127.f, 127.f));
}

void KvCache::store(uint8_t* headBlock, int off, const float* src) {
  uint8_t* dst = headBlock + size_t(off) * headBytes_;
  if (type_ == KvType::F32) {
    std::memcpy(dst, src, headBytes_);
    return;
  }
  if (type_ == KvType::I8) {
    quantize_row_i8(src, headDim_, reinterpret_cast<int8_t*>(dst), reinterpret_cast<float*>(headBlock + scales_offset()) + off);
    return;
  }  // Fp8 is the CUDA backend's own (src/cuda): a CPU pool is never made with it (Engine::load refuses)
  auto* h = reinterpret_cast<uint16_t*>(dst);
  if (toF16_) {
    toF16_(src, h, headDim_);
    return;
  }
  for (int i = 0; i < headDim_; i++) h[i] = f32_to_fp16(src[i]);
}

// k, v: this token's (nKvHeads * headDim) rows.
void KvCache::write_token(int layer, const float* k, const float* v, int32_t slot) {
  const int block = slot / blockSize_, off = slot % blockSize_;
  for (int h = 0; h < nKv_; h++) {
    store(buf_.data() + offset(layer, 0, block, h), off, k + h * headDim_);
    store(buf_.data() + offset(layer, 1, block, h), off, v + h * headDim_);
  }
}

void KvCache::write(ThreadPool& pool, int layer, const float* k, const float* v, int T, const int32_t* slots) {
  const size_t kvDim = size_t(nKv_) * headDim_;
  const auto tokens = [&](int t0, int t1) {
    for (int t = t0; t < t1; t++) write_token(layer, k + t * kvDim, v + t * kvDim, slots[t]);
  };
  if (T < 2 * kTokensPerItem) {
    tokens(0, T);
  } else {
    pool.parallel_for((T + kTokensPerItem - 1) / kTokensPerItem,
                      [&](int i) { tokens(i * kTokensPerItem, std::min(T, (i + 1) * kTokensPerItem)); });
  }
}

// One (layer, K|V) run of a block is contiguous in the pool: nKvHeads heads of (blockSize, headDim).
void KvCache::export_block(int block, uint8_t* dst) const {
  const size_t run = block_bytes();
  for (int l = 0; l < nLayers_; l++)
    for (int kv = 0; kv < 2; kv++, dst += run) std::memcpy(dst, buf_.data() + offset(l, kv, block, 0), run);
}

void KvCache::import_block(int block, const uint8_t* src) {
  const size_t run = block_bytes();
  for (int l = 0; l < nLayers_; l++)
    for (int kv = 0; kv < 2; kv++, src += run) std::memcpy(buf_.data() + offset(l, kv, block, 0), src, run);
}

}  // namespace flotilla
