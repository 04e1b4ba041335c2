// The paged KV pool: per layer, K and V of (numBlocks, nKvHeads, blockSize, headDim), allocated once.
// A head's keys within a block are contiguous, so attention streams them.
//
// Byte layout, outer to inner: layer, K|V, block, KV head, then one "head block" of
// kv_head_block_bytes(type, blockSize, headDim) bytes (kv-type.h):
//   f32 / f16:   blockSize rows of headDim elements
//   int8 / fp8:  blockSize rows of headDim bytes, then blockSize f32 scales (row r's at scales(...)[r])
// So all of one block's data for one (layer, K|V), scales included, is the single run of
// block_bytes() bytes at keys(layer, block, 0) / values(layer, block, 0): copying those runs for every
// layer moves a block with its scales (export/import of a block needs nothing else).
#pragma once
#include <cstdint>

#include "aligned-buffer.h"
#include "kv-type.h"
#include "load-spec.h"

namespace flotilla {

class ThreadPool;

// One row of n floats to symmetric int8 with its own scale: q = round(x * 127 / max|x|), *scale =
// max|x| / 127 (0 and all-zero q for an all-zero row). The int8 pool's store (and the tests' reference).
void quantize_row_i8(const float* x, int n, int8_t* q, float* scale);

class KvCache {
 public:
  // n floats to IEEE half with f32_to_fp16's rounding (the CPU kernel set's F16C routine: core/ is
  // built without ISA flags); null means f32_to_fp16 per element.
  using ToF16 = void (*)(const float* x, uint16_t* out, int n);

  KvCache(const ModelConfig& c, int numBlocks, int blockSize, KvType type, ToF16 toF16 = nullptr);

  // Every layer's K and V of one block, scales included.
  static uint64_t bytes_per_block(const ModelConfig& c, int blockSize, KvType type);

  int numBlocks() const { return numBlocks_; }
  int blockSize() const { return blockSize_; }
  KvType type() const { return type_; }
  size_t bytes() const { return buf_.size(); }
  size_t row_bytes() const { return headBytes_; }                // one token of one head (no scale)
  size_t head_block_bytes() const { return headBlockBytes_; }    // one head of one block, scales included
  size_t block_bytes() const { return headBlockBytes_ * nKv_; }  // one block of one (layer, K|V)
  size_t scales_offset() const { return size_t(blockSize_) * headBytes_; }  // head block start -> its scales

  // Start of (blockSize, headDim) keys or values of one head in one block.
  const uint8_t* keys(int layer, int block, int head) const { return buf_.data() + offset(layer, 0, block, head); }
  const uint8_t* values(int layer, int block, int head) const { return buf_.data() + offset(layer, 1, block, head); }
  // The blockSize f32 scales of those rows (int8 / fp8 pools only).
  const float* scales(int layer, int kv, int block, int head) const {
    return reinterpret_cast<const float*>(buf_.data() + offset(layer, kv, block, head) + scales_offset());
  }

  // Zero-fills the pool from every thread of `pool` at load, so its pages are faulted in (and zeroed
  // by the kernel) in parallel now rather than one by one inside the first steps that reach them.
  void prefault(ThreadPool& pool);

  // k, v: (T, nKvHeads * headDim); slots[t] = block * blockSize + offset, already range-checked and
  // distinct. Tokens are spread over `pool` when there are enough of them (each writes only its slot).
  void write(ThreadPool& pool, int layer, const float* k, const float* v, int T, const int32_t* slots);

  // KV transfer (kv-payload.h): every layer's K and V of one block, contiguous, transfer_block_bytes()
  // bytes: [layer 0 K: block_bytes()][layer 0 V]...[layer L-1 V], each run as the pool holds it (an
  // 8-bit pool's per-row scales included, since they sit inside the run).
  size_t transfer_block_bytes() const { return 2 * size_t(nLayers_) * block_bytes(); }
  void export_block(int block, uint8_t* dst) const;
  void import_block(int block, const uint8_t* src);

 private:
  size_t offset(int layer, int kv, int block, int head) const {
    return (((size_t(layer) * 2 + kv) * numBlocks_ + block) * nKv_ + head) * headBlockBytes_;
  }
  // One row of one head into its block at offset `off`.
  void store(uint8_t* headBlock, int off, const float* src);
  void write_token(int layer, const float* k, const float* v, int32_t slot);

  int nLayers_, numBlocks_, blockSize_, nKv_, headDim_;
  KvType type_;
  ToF16 toF16_;
  size_t headBytes_;       // one token of one head
  size_t headBlockBytes_;  // one head of one block, with its scales
  AlignedBuffer buf_;
};

}  // namespace flotilla
