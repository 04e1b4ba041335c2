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

// Layouts: row-major, or (F32, F16, BF16, Q8_0 and Q4_0; made by the AVX-512 CPU backend) panels of kPanel rows,
// rows padded to whole panels, so a matmul reads the weights as one sequential stream, vectorised over
// 16 output rows, and sums every output in plain k (group) order whatever the batch size.
//  F32, F16, BF16: each panel k-major — element (n, k) at element index ((n / kPanel) * cols + k) *
//       kPanel + n % kPanel (4 or 2 bytes each); padded rows are zeros. A 16-bit panel is read as one
//       stream of half the bytes and widened to f32 in registers, so the arithmetic is the F32 panels'.
//  Q8_0 / Q4_0: panel i starts at data + i * kPanel * rowBytes (the same bytes as its 16 rows) and
//       holds its nb = groups_of(cols) groups in pairs, each pair one sequential run: the 16 rows' fp16
//       scales of group 2j, those of group 2j+1 (64 bytes), then group 2j's quants, group 2j+1's
//       (an odd last group: its 32 bytes of scales, then its quants). A group's quants are chunks of
//       64 bytes, chunk c = [16 rows x 4 bytes], row r's bytes at 4r..4r+3:
//         Q8_0: 8 chunks; chunk c holds elements 4c..4c+3 as unsigned bytes q + 128 (q ^ 0x80);
//         Q4_0: 4 chunks; chunk c holds elements 4c..4c+3 in the low nibbles and 16+4c..16+4c+3 in the
//               high nibbles (the GGUF block's own byte pairs), value = d * (nibble - 8);
//       so one vpdpbusd of a chunk by 4 broadcast activation bytes does 4 k-steps for 16 rows, and a
//       panel is read as one stream. Padded rows have zero scales (and zero bytes).
//  Q4_Z / Q8_Z: as Q4_0 / Q8_0 with unsigned quants as stored (value = d * (q - z), no offset), and
//       each group's header twice as long: a pair is the 16 fp16 scales of group 2j, of 2j+1, then the
//       16 u16 zero points of 2j, of 2j+1 (128 bytes), then the quants (an odd last group: scales,
//       zeros, quants).
constexpr int kPanel = 16;

struct Weight {
  DType type = DType::F32;
  int rows = 0, cols = 0;
  size_t rowBytes = 0;
  bool panels = false;  // the panel layout above (row() is then meaningless)
  // GPTQ desc_act: the columns are stored in act order, column j multiplying input inPerm[j] (so each
  // quantization group is contiguous); empty means the identity. Only on quantized types.
  std::vector<int32_t> inPerm;
  const uint8_t* data = nullptr;
  AlignedBuffer owned;  // what data points into

  const uint8_t* row(int r) const { return data + static_cast<size_t>(r) * rowBytes; }
  const float* f32() const { return reinterpret_cast<const float*>(data); }
  int storedRows() const { return panels ? (rows + kPanel - 1) / kPanel * kPanel : rows; }
  size_t bytes() const { return rowBytes * static_cast<size_t>(storedRows()); }
};

// Quantized panels: bytes of one group's quants and header (scales, and zero points for Q4_Z), and
// where group g's scales, zero points and quants start in a panel.
inline size_t qpanel_quant_bytes(DType t) { return t == DType::Q8_0 || t == DType::Q8_Z ? 512 : 256; }
inline size_t qpanel_head_bytes(DType t) { return t == DType::Q4_Z || t == DType::Q8_Z ? 64 : 32; }
inline size_t qpanel_pair_bytes(DType t) { return 2 * (qpanel_head_bytes(t) + qpanel_quant_bytes(t)); }
inline size_t qpanel_scales_at(DType t, int g) { return size_t(g / 2) * qpanel_pair_bytes(t) + 32 * size_t(g % 2); }
inline size_t qpanel_zeros_at(DType t, int nb, int g) {  // Q4_Z and Q8_Z only
  return size_t(g / 2) * qpanel_pair_bytes(t) + ((g | 1) < nb ? 64 : 32) + 32 * size_t(g % 2);
}
inline size_t qpanel_quants_at(DType t, int nb, int g) {
  const bool pair = (g | 1) < nb;  // an odd last group has one header before its quants, not two
  return size_t(g / 2) * qpanel_pair_bytes(t) + (pair ? 2 : 1) * qpanel_head_bytes(t) + qpanel_quant_bytes(t) * size_t(g % 2);
}

class ThreadPool;
// Whether to_panels rewrites a weight of this type (F32, F16, BF16 and the quantized ones).
inline bool has_panel_layout(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16 || is_quantized(t); }
inline bool is_float_type(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }
// Rewrites a row-major weight of such a type into the panel layout (load time), in a new owned buffer,
// or at dst (w.bytes() bytes, 64-byte aligned, outliving w) when given; other weights are left as they are.
void to_panels(Weight& w, ThreadPool& pool, uint8_t* dst = nullptr);
// The same for many weights, placed one after another in one new buffer appended to `arenas`: a
// model's matrices are mostly under 2 MB each, and only buffers from 2 MB up get huge pages, which
// single-sequence decode needs to stream them at full speed.
void to_panels(const std::vector<Weight*>& ws, ThreadPool& pool, std::vector<AlignedBuffer>& arenas);
// Row r of a weight in either layout, decoded to floats (as decode_row would the row-major row).
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
  std::vector<AlignedBuffer> panelArenas;  // where a backend's to_panels put the weights it rewrote

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
