// The per-row LoRA update of one forward pass on the CPU (the SGMV idea of Punica / S-LoRA): the step's
// rows are grouped by adapter slot once per forward, and after each base matmul every group's rows get
//   y[rows] += scale * (x[rows] . A^T) . B^T
// for the modules of that site (q|k|v after wq|wk|wv, o after wo, gate|up after w1|w3, down after w2).
// Shrink (x . A^T, rank columns) runs one task per group; expand (. B^T) one task per (group, module,
// chunk of output columns), whole modules when the groups alone keep the threads busy. Both use
// kern.matmul, whose sum for an output element is in a fixed order whatever the number of rows, so a
// row's result does not depend on the batch around it.
#pragma once
#include "../core/aligned-buffer.h"
#include "../core/lora.h"
#include "../core/thread-pool.h"
#include "kernels.h"

namespace flotilla {

struct LoraOut {
  int module;  // LoraModule
  float* y;    // (T, out) the base matmul's output, updated in place
};

class LoraApply {
 public:
  LoraApply(const ModelConfig& c, int maxTokens, int maxRank);

  // Once per forward: groups b's rows by b.loraSlots (none when it is null or all -1).
  void begin(const StepBatch& b, const LoraPool* pool);
  bool active() const { return pool_ && groups_.count() > 0; }

  // One site of layer `layer`: x (T, in) is the input every module of `outs` (at most 3) shares.
  void apply(ThreadPool& tp, const CpuKernels& kern, int layer, const float* x, int in, const LoraOut* outs, int nOuts);

 private:
  const ModelConfig c_;
  const LoraPool* pool_ = nullptr;
  LoraGroups groups_;
  int rankPad_;          // maxRank rounded up to whole panels: one module's shrink columns
  size_t maxIn_, ldt_;   // widest input; columns of tmp_ (the widest site's outputs, each padded)
  AlignedBuffer gx_;     // (T, maxIn) the input rows, gathered group after group
  AlignedBuffer ys_;     // (T, 3 * rankPad) x . A^T per module
  AlignedBuffer tmp_;    // (T, ldt) . B^T before it is added to the rows it belongs to
};

}  // namespace flotilla
