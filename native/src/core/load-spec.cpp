#include "load-spec.h"

#include <cmath>

#include "error.h"

namespace flotilla {

bool parse_weight_format(const std::string& name, WeightFormat* out) {
  static const struct { const char* name; WeightFormat f; } kNames[] = {
      {"auto", WeightFormat::Auto}, {"f32", WeightFormat::F32},   {"f16", WeightFormat::F16},
      {"bf16", WeightFormat::BF16}, {"int8", WeightFormat::Int8}, {"int4", WeightFormat::Int4}};
  for (const auto& n : kNames) {
    if (name == n.name) {
      *out = n.f;
      return true;
    }
  }
  return false;
}

void check_config(const ModelConfig& c) {
  auto positive = [](int v, const char* name) {
    if (v <= 0) fail("E_SHAPE", std::string("config.") + name + " must be a positive integer, got " + std::to_string(v));
  };
  positive(c.dim, "dim");
  positive(c.hiddenDim, "hiddenDim");
  positive(c.nLayers, "nLayers");
  positive(c.nHeads, "nHeads");
  positive(c.nKvHeads, "nKvHeads");
  positive(c.vocabSize, "vocabSize");
  positive(c.maxSeqLen, "maxSeqLen");
  if (c.dim % c.nHeads != 0) fail("E_SHAPE", "config.dim " + std::to_string(c.dim) + " is not a multiple of nHeads");
  if (c.nHeads % c.nKvHeads != 0) fail("E_SHAPE", "config.nHeads is not a multiple of nKvHeads");
  if (c.headDim() % 2 != 0 || c.headDim() > 1024) fail("E_SHAPE", "head dimension must be even and at most 1024");
  if (!(c.ropeTheta > 0) || !std::isfinite(c.ropeTheta)) fail("E_SHAPE", "config.ropeTheta must be positive");
  if (!(c.normEps > 0) || !std::isfinite(c.normEps)) fail("E_SHAPE", "config.normEps must be positive");
}

void check_limits(const LoadSpec& s) {
  if (s.blockSize < 1 || s.blockSize > 1024) fail("E_SHAPE", "blockSize must be in 1..1024");
  if (s.maxBatchTokens < 1 || s.maxBatchTokens >= (1 << 20)) fail("E_SHAPE", "maxBatchTokens must be in 1..2^20-1");
  if (s.maxBatchSeqs < 1 || s.maxBatchSeqs > s.maxBatchTokens) fail("E_SHAPE", "maxBatchSeqs must be in 1..maxBatchTokens");
  if (s.numBlocks < 0) fail("E_SHAPE", "numBlocks must be positive");
  if (s.numThreads < 0 || s.numThreads > 1024) fail("E_SHAPE", "numThreads must be in 1..1024");
  if (!(s.gpuMemoryUtilization > 0 && s.gpuMemoryUtilization <= 1)) fail("E_SHAPE", "gpuMemoryUtilization must be in (0, 1]");
}

bool cuda_compiled() {
#ifdef FLOTILLA_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace flotilla
