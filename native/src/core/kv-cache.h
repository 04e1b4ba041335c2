// The paged KV pool: per layer, K and V of (numBlocks, nKvHeads, blockSize, headDim), allocated once.
// A head's keys within a block are contiguous, so attention streams them.
#pragma once
#include <cstdint>

#include "aligned-buffer.h"
#include "load-spec.h"

namespace flotilla {

class ThreadPool;

class KvCache {
 public:
  // n floats to IEEE half with f32_to_fp16's rounding (the CPU kernel set's F16C routine: core/ is
  // built without ISA flags); null means f32_to_fp16 per element.
  using ToF16 = void (*)(const float* x, uint16_t* out, int n);

  KvCache(const ModelConfig& c, int numBlocks, int blockSize, bool f16, ToF16 toF16 = nullptr);

  static uint64_t bytes_per_block(const ModelConfig& c, int blockSize, bool f16);

  int numBlocks() const { return numBlocks_; }
  int blockSize() const { return blockSize_; }
  bool f16() const { return f16_; }
  size_t bytes() const { return buf_.size(); }

  // Start of (blockSize, headDim) keys or values of one head in one block.
  const uint8_t* keys(int layer, int block, int head) const { return buf_.data() + offset(layer, 0, block, head); }
  const uint8_t* values(int layer, int block, int head) const { return buf_.data() + offset(layer, 1, block, head); }

  // Zero-fills the pool from every thread of `pool` at load, so its pages are faulted in (and zeroed
  // by the kernel) in parallel now rather than one by one inside the first steps that reach them.
  void prefault(ThreadPool& pool);

  // k, v: (T, nKvHeads * headDim); slots[t] = block * blockSize + offset, already range-checked and
  // distinct. Tokens are spread over `pool` when there are enough of them (each writes only its slot).
  void write(ThreadPool& pool, int layer, const float* k, const float* v, int T, const int32_t* slots);

  // KV transfer (kv-payload.h): every layer's K and V of one block, contiguous, block_bytes() bytes:
  // [layer 0 K (nKvHeads, blockSize, headDim)][layer 0 V]...[layer L-1 V], elements as the pool holds
  // them. The copy is per block so that a format with per-block data (scales) extends it here.
  size_t block_bytes() const { return 2 * size_t(nLayers_) * nKv_ * blockSize_ * headBytes_; }
  void export_block(int block, uint8_t* dst) const;
  void import_block(int block, const uint8_t* src);

 private:
  size_t offset(int layer, int kv, int block, int head) const {
    return ((((size_t(layer) * 2 + kv) * numBlocks_ + block) * nKv_ + head) * blockSize_) * headBytes_;
  }
  void store(uint8_t* dst, const float* src);
  void write_token(int layer, const float* k, const float* v, int32_t slot);

  int nLayers_, numBlocks_, blockSize_, nKv_, headDim_;
  bool f16_;
  ToF16 toF16_;
  size_t headBytes_;  // one token of one head
  AlignedBuffer buf_;
};

}  // namespace flotilla
