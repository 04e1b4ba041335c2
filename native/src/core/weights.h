// Model weights as held in memory: each matrix is (rows, cols) row-major in one DType, either in place
// in a file mapping or in an owned buffer produced by a conversion at load.
#pragma once
#include <memory>
#include <vector>

#include "aligned-buffer.h"
#include "dtype.h"
#include "load-spec.h"
#include "mapped-file.h"

namespace flotilla {

struct Weight {
  DType type = DType::F32;
  int rows = 0, cols = 0;
  size_t rowBytes = 0;
  const uint8_t* data = nullptr;
  AlignedBuffer owned;  // empty when data points into a mapping

  const uint8_t* row(int r) const { return data + static_cast<size_t>(r) * rowBytes; }
  const float* f32() const { return reinterpret_cast<const float*>(data); }
  size_t bytes() const { return rowBytes * static_cast<size_t>(rows); }
};

struct LayerWeights {
  Weight attnNorm, ffnNorm;  // (dim) f32
  Weight wq, wk, wv, wo;     // (nHeads*headDim, dim), (kvDim, dim) x2, (dim, nHeads*headDim)
  Weight w1, w2, w3;         // gate (hidden, dim), down (dim, hidden), up (hidden, dim)
};

struct ModelWeights {
  ModelConfig config;
  std::vector<std::unique_ptr<MappedFile>> files;
  Weight tokEmbeddings;  // (vocab, dim)
  Weight norm;           // (dim) f32
  Weight output;         // (vocab, dim); empty when tied
  std::vector<LayerWeights> layers;

  const Weight& classifier() const { return config.tiedEmbeddings ? tokEmbeddings : output; }
  size_t bytes() const;
};

class ThreadPool;
using ProgressFn = void (*)(void* ctx, int done, int total);

// Validates the manifest against the config and the files, then maps and converts. Throws EngineError.
std::unique_ptr<ModelWeights> load_weights(const LoadSpec& spec, ThreadPool& pool, ProgressFn progress, void* ctx);

// Row codecs used at load time (and by the embedding lookup): any DType <-> f32.
void decode_row(DType type, const uint8_t* src, int cols, float* out);
void encode_row(DType type, const float* in, int cols, uint8_t* dst);

}  // namespace flotilla
