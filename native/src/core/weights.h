// Model weights as held in memory: each matrix is (rows, cols) row-major in one DType, in an owned
// buffer (huge pages from 2 MB up) filled at load by a copy or a conversion from the mapped file.
#pragma once
#include <memory>
#include <vector>

#include "aligned-buffer.h"
#include "dtype.h"
#include "load-spec.h"
#include "mapped-file.h"

namespace flotilla {

// Layouts: row-major, or (F32 only, made by the AVX-512 CPU backend) panels of kPanel rows, each
// panel k-major — element (n, k) at data[((n / kPanel) * cols + k) * kPanel + n % kPanel], rows padded
// with zeros to whole panels — so a matmul reads the weights as one sequential stream, vectorised
// over 16 output rows, and sums every output in plain k order whatever the batch size.
constexpr int kPanel = 16;

struct Weight {
  DType type = DType::F32;
  int rows = 0, cols = 0;
  size_t rowBytes = 0;
  bool panels = false;  // the panel layout above (row() is then meaningless)
  const uint8_t* data = nullptr;
  AlignedBuffer owned;  // what data points into

  const uint8_t* row(int r) const { return data + static_cast<size_t>(r) * rowBytes; }
  const float* f32() const { return reinterpret_cast<const float*>(data); }
  int storedRows() const { return panels ? (rows + kPanel - 1) / kPanel * kPanel : rows; }
  size_t bytes() const { return rowBytes * static_cast<size_t>(storedRows()); }
};

class ThreadPool;
// Rewrites an F32 row-major weight into the panel layout (a new owned buffer; load time).
void to_panels(Weight& w, ThreadPool& pool);
// Row r of a weight in either layout, as floats (F32 panels) or decoded (row-major, any DType).
void read_row(const Weight& w, int r, float* out);

struct LayerWeights {
  Weight attnNorm, ffnNorm;  // (dim) f32
  Weight wq, wk, wv, wo;     // (nHeads*headDim, dim), (kvDim, dim) x2, (dim, nHeads*headDim)
  Weight w1, w2, w3;         // gate (hidden, dim), down (dim, hidden), up (hidden, dim)
};

struct ModelWeights {
  ModelConfig config;
  Weight tokEmbeddings;  // (vocab, dim)
  Weight norm;           // (dim) f32
  Weight output;         // (vocab, dim); empty when tied
  std::vector<LayerWeights> layers;

  const Weight& classifier() const { return config.tiedEmbeddings ? tokEmbeddings : output; }
  size_t bytes() const;
};

using ProgressFn = void (*)(void* ctx, int done, int total);

// Validates the manifest against the config and the files, then maps and converts. Throws EngineError.
std::unique_ptr<ModelWeights> load_weights(const LoadSpec& spec, ThreadPool& pool, ProgressFn progress, void* ctx);

// Row codecs used at load time (and by the embedding lookup): any DType <-> f32.
void decode_row(DType type, const uint8_t* src, int cols, float* out);
void encode_row(DType type, const float* in, int cols, uint8_t* dst);

}  // namespace flotilla
