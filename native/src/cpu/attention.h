// Paged attention over the KV pool for a varlen batch: the query at position p of a sequence attends
// to positions 0..p of that sequence, read through its block table (cached prefix and this step's
// tokens alike, which are written to the pool before attention runs).
#pragma once
#include <vector>

#include "../core/kv-cache.h"
#include "../core/step-batch.h"
#include "../core/thread-pool.h"
#include "kernels.h"

namespace flotilla {

class PagedAttention {
 public:
  PagedAttention(const ModelConfig& c, int maxBatchTokens, int maxBatchSeqs);

  // q: (T, nHeads * headDim) -> out: (T, nHeads * headDim). Parallel over decode rows (all heads
  // of one, where the kernel set has attend_heads) and (prefill chunk of 16 rows, head).
  void run(ThreadPool& pool, const CpuKernels& kern, const KvCache& kv, int layer, const StepBatch& b, const float* q,
           float* out);

 private:
  struct Chunk {
    int seq, t0, t1;
  };
  struct Item {
    int chunk, head;  // head -1: every head of the chunk's single row
  };
  bool attend_heads(const CpuKernels& kern, const KvCache& kv, int layer, const StepBatch& b, int seq, int t, const float* q,
                    float* out) const;
  void attend_row(const CpuKernels& kern, const KvCache& kv, int layer, const StepBatch& b, int seq, int t, int head,
                  const float* q, float* out) const;

  ModelConfig c_;
  std::vector<Chunk> chunks_;  // capacity fixed at load; refilled each layer call without allocating
  std::vector<Item> items_;
};

}  // namespace flotilla
