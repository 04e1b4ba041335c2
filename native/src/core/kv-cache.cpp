#include "kv-cache.h"

#include <algorithm>
#include <cstring>

#include "thread-pool.h"

namespace flotilla {

uint64_t KvCache::bytes_per_block(const ModelConfig& c, int blockSize, bool f16) {
  return uint64_t(c.nLayers) * 2 * blockSize * c.kvDim() * (f16 ? 2 : 4);
}

namespace {

// A pool item writes this many tokens (a few KB each): enough to outweigh claiming it. Fewer tokens
// than two items are written by the caller alone.
constexpr int kTokensPerItem = 8;

}  // namespace

KvCache::KvCache(const ModelConfig& c, int numBlocks, int blockSize, bool f16, ToF16 toF16)
    : nLayers_(c.nLayers),
      numBlocks_(numBlocks),
      blockSize_(blockSize),
      nKv_(c.nKvHeads),
      headDim_(c.headDim()),
      f16_(f16),
      toF16_(toF16),
      headBytes_(size_t(c.headDim()) * (f16 ? 2 : 4)),
      // not zero-filled here: prefault() does it in parallel (a serial memset of GBs takes seconds)
      buf_(bytes_per_block(c, blockSize, f16) * numBlocks, "the KV cache", false) {}

void KvCache::prefault(ThreadPool& pool) {
  constexpr size_t kChunk = size_t(16) << 20;
  const size_t n = (buf_.size() + kChunk - 1) / kChunk;
  pool.parallel_for(static_cast<int>(n), [&](int i) {
    const size_t at = size_t(i) * kChunk;
    std::memset(buf_.data() + at, 0, std::min(kChunk, buf_.size() - at));
  });
}

void KvCache::store(uint8_t* dst, const float* src) {
  if (!f16_) {
    std::memcpy(dst, src, headBytes_);
    return;
  }
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
    store(buf_.data() + offset(layer, 0, block, h) + off * headBytes_, k + h * headDim_);
    store(buf_.data() + offset(layer, 1, block, h) + off * headBytes_, v + h * headDim_);
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
  const size_t run = size_t(nKv_) * blockSize_ * headBytes_;
  for (int l = 0; l < nLayers_; l++)
    for (int kv = 0; kv < 2; kv++, dst += run) std::memcpy(dst, buf_.data() + offset(l, kv, block, 0), run);
}

void KvCache::import_block(int block, const uint8_t* src) {
  const size_t run = size_t(nKv_) * blockSize_ * headBytes_;
  for (int l = 0; l < nLayers_; l++)
    for (int kv = 0; kv < 2; kv++, src += run) std::memcpy(buf_.data() + offset(l, kv, block, 0), src, run);
}

}  // namespace flotilla
