// LoRA adapters resident in the engine: a pool of `maxLoras` fixed-size slots, each room for one
// adapter of rank <= maxRank on every layer and every target module (q, k, v, o, gate, up, down), all
// in one buffer of their own (not the weights' arenas, not the KV pool). Which adapter occupies which
// slot, and which to evict, is the TypeScript side's policy (lora/adapter-slots.ts); here a slot is
// loaded, cleared and read.
//
// Per module an adapter holds A (r, in) and B (out, r) in the file's type (f32, f16 or bf16), and the
// update of a row x is scale * (B . (A . x)), scale = lora_alpha / r: y = x W^T + scale * x A^T B^T.
// They are laid out as the CPU kernels read weights (B in panels where the kernel set wants them, A
// row-major: its r rows are long dot products), so the low-rank products reuse kern.matmul and keep
// its fixed summation order per (row, token).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "aligned-buffer.h"
#include "load-spec.h"
#include "step-batch.h"
#include "weights.h"

namespace flotilla {

class ThreadPool;

enum LoraModule { kLoraQ, kLoraK, kLoraV, kLoraO, kLoraGate, kLoraUp, kLoraDown, kLoraModules };

// The engine's canonical short name of a module's base weight ("wq", ..., "w1" gate, "w2" down, "w3" up).
const char* lora_module_name(int m);
// (out, in) of a module's base weight.
void lora_module_dims(const ModelConfig& c, int m, int* out, int* in);

struct LoraMatrices {
  int rank = 0;  // 0: the module has no update
  Weight a, b;   // (rank, in), (out, rank) f32/f16/bf16; data points into the pool's slot
};

struct LoraSlot {
  bool loaded = false;
  int maxRank = 0;    // the largest rank of its modules
  float scale = 1.f;  // lora_alpha / r: multiplies B's output
  std::vector<std::array<LoraMatrices, kLoraModules>> layers;
};

// What loadLora() is given: tensors named layers.{i}.{wq|wk|wv|wo|w1|w2|w3}.lora_{a|b} pointing into files,
// A (r, in), B (out, r), in f32, f16 or bf16; scale multiplies B's output.
struct LoraSpec {
  std::vector<std::string> files;
  std::vector<TensorSpec> tensors;
  float scale = 1.f;
  // PEFT adapters are in Hugging Face's layout, whose q/k rows pair (i, i + headDim/2) for RoPE; a base
  // held in the interleaved layout (llama2.c, GGUF) takes lora_b rows of wq/wk reordered to match.
  bool halfToInterleaved = false;
};

class LoraPool {
 public:
  // panels: lay the matrices out as a kernel set with CpuKernels::panels reads them.
  LoraPool(const ModelConfig& c, int maxLoras, int maxRank, bool panels);

  int maxLoras() const { return int(slots_.size()); }
  int maxRank() const { return maxRank_; }
  size_t bytes() const { return buffer_.size(); }
  const LoraSlot& slot(int i) const { return slots_[i]; }

  // Validates every tensor (names, shapes, ranks, dtypes, file bounds) before touching the slot, then
  // fills it. Throws E_SHAPE / E_DTYPE / E_RANGE / E_FILE naming the tensor; the slot is left empty on error.
  void load(int slot, const LoraSpec& spec, ThreadPool& pool);
  void unload(int slot);

  // E_BATCH when b.loraSlots names a slot outside 0..maxLoras-1 or one that is not loaded.
  void check_batch(const StepBatch& b) const;

 private:
  size_t slot_bytes() const;

  ModelConfig c_;
  int maxRank_;
  bool panels_;
  AlignedBuffer buffer_;  // maxLoras * slot_bytes()
  std::vector<LoraSlot> slots_;
};

// The step's rows grouped by adapter slot (the SGMV grouping): group g covers rows[start[g] .. start[g+1]),
// all of sequences with loraSlots == slot[g]; rows of sequences without an adapter are in no group.
struct LoraGroups {
  std::vector<int32_t> slot, start, rows;
  int count() const { return int(slot.size()); }
  void build(const StepBatch& b, int maxLoras);
};

}  // namespace flotilla
