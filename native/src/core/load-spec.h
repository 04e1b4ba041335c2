// Everything loadModel() is given (NativeLoadOptions), as plain C++ so the core builds without Node.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "dtype.h"
#include "kv-type.h"

namespace flotilla {

enum class RopeLayout { Interleaved, Half };
enum class WeightFormat { Auto, F32, F16, BF16, Int8, Int4 };

struct ModelConfig {
  int dim = 0, hiddenDim = 0, nLayers = 0, nHeads = 0, nKvHeads = 0, vocabSize = 0, maxSeqLen = 0;
  float ropeTheta = 10000.f;
  RopeLayout ropeLayout = RopeLayout::Interleaved;
  float normEps = 1e-5f;
  bool tiedEmbeddings = true;

  int headDim() const { return dim / nHeads; }
  int kvDim() const { return headDim() * nKvHeads; }
};

// One stored tensor of a packed (GPTQ/AWQ) linear layer, under the checkpoint's own name.
struct PackedPart {
  std::string name;
  int file = -1;  // -1: absent
  uint64_t offset = 0;
  bool int32 = false;        // qweight, qzeros and g_idx must be int32
  DType dtype = DType::F32;  // otherwise (scales): f16, bf16 or f32
  std::vector<int64_t> shape;
};

// A linear layer stored as a GPTQ or AWQ checkpoint holds it (Hugging Face layouts; weights-gptq.h).
struct PackedQuant {
  enum class Scheme { None, Gptq, Awq } scheme = Scheme::None;
  int bits = 4;
  int groupSize = 128;  // -1: one group per output channel over all inputs
  int zeroOffset = 1;   // added to a stored zero point: GPTQ's v1 checkpoints store zero - 1, AWQ and gptq_v2 0
  PackedPart qweight, qzeros, scales, gIdx;
};

struct TensorSpec {
  std::string name;
  int file = 0;
  uint64_t offset = 0;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  PackedQuant packed;  // scheme None: a plain tensor of `dtype` at file/offset
};

struct LoadSpec {
  ModelConfig config;
  std::vector<std::string> files;
  std::vector<TensorSpec> tensors;
  WeightFormat weightFormat = WeightFormat::Auto;
  int blockSize = 16;
  uint64_t kvCacheBytes = 256ull << 20;
  int numBlocks = 0;  // 0: derive from kvCacheBytes
  KvType kvType = KvType::F32;
  bool kvAuto = false;  // kvDtype 'auto': f16 when the layer matrices are held in f16, else f32 (Engine::load decides)
  int maxBatchTokens = 2048;
  int maxBatchSeqs = 256;
  int numThreads = 0;  // 0: number of cores
  enum class Device { Auto, Cpu, Cuda } device = Device::Auto;
  bool kvCacheBytesGiven = false;     // kvCacheBytes was set explicitly (the CUDA backend then honours it)
  double gpuMemoryUtilization = 0.9;  // CUDA: fraction of device memory for weights + activations + KV
  int maxLoras = 0;     // LoRA adapter slots (core/lora.h); 0: none
  int maxLoraRank = 0;  // largest adapter rank a slot holds
  // activations 'f32': the CPU backend's quantized matmuls take f32 activations (weights widened in
  // registers) instead of int8 ones; 'int8' (false) is the default. CUDA refuses it (E_DEVICE).
  bool f32Activations = false;
};

bool parse_weight_format(const std::string& name, WeightFormat* out);
void check_config(const ModelConfig& c);       // throws E_SHAPE
void check_limits(const LoadSpec& spec);       // throws E_SHAPE / E_BATCH for bad sizes

// Whether the CUDA backend was compiled in (FLOTILLA_HAVE_CUDA).
bool cuda_compiled();

}  // namespace flotilla
