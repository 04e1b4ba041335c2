// Manifest validation (every tensor present, shaped as the config says, inside its file, of a known
// dtype) and the one-time conversion of each weight to the requested in-memory format.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <unordered_map>

#include "error.h"
#include "thread-pool.h"
#include "weights-gptq.h"
#include "weights.h"

namespace flotilla {

namespace {

enum class Role { Norm, Matrix, Embedding };

struct Expected {
  std::string name;
  std::vector<int64_t> shape;
  Role role;
  Weight* dst;
};

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); i++) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

std::vector<Expected> expected_tensors(const ModelConfig& c, ModelWeights& w) {
  const int64_t dim = c.dim, hid = c.hiddenDim, q = int64_t(c.nHeads) * c.headDim(), kv = c.kvDim();
  std::vector<Expected> e = {{"tok_embeddings", {c.vocabSize, dim}, Role::Embedding, &w.tokEmbeddings},
                             {"norm", {dim}, Role::Norm, &w.norm}};
  if (!c.tiedEmbeddings) e.push_back({"output", {c.vocabSize, dim}, Role::Embedding, &w.output});
  for (int i = 0; i < c.nLayers; i++) {
    LayerWeights& l = w.layers[i];
    const std::string p = "layers." + std::to_string(i) + ".";
    e.push_back({p + "attention_norm", {dim}, Role::Norm, &l.attnNorm});
    e.push_back({p + "ffn_norm", {dim}, Role::Norm, &l.ffnNorm});
    e.push_back({p + "wq", {q, dim}, Role::Matrix, &l.wq});
    e.push_back({p + "wk", {kv, dim}, Role::Matrix, &l.wk});
    e.push_back({p + "wv", {kv, dim}, Role::Matrix, &l.wv});
    e.push_back({p + "wo", {dim, q}, Role::Matrix, &l.wo});
    e.push_back({p + "w1", {hid, dim}, Role::Matrix, &l.w1});
    e.push_back({p + "w2", {dim, hid}, Role::Matrix, &l.w2});
    e.push_back({p + "w3", {hid, dim}, Role::Matrix, &l.w3});
  }
  return e;
}

// int4 keeps the embedding/classifier at 8 bits, as llama.cpp keeps its output matrix above 4 bits.
DType target_type(DType src, WeightFormat f, Role role) {
  if (role == Role::Norm) return DType::F32;
  switch (f) {
    case WeightFormat::Auto: return src;
    case WeightFormat::F32: return DType::F32;
    case WeightFormat::F16: return DType::F16;
    case WeightFormat::BF16: return DType::BF16;
    case WeightFormat::Int8: return DType::Q8_0;
    case WeightFormat::Int4: return role == Role::Embedding ? DType::Q8_0 : DType::Q4_0;
  }
  return src;
}

void validate(const TensorSpec& t, const Expected& e, const LoadSpec& spec,
              const std::vector<std::unique_ptr<MappedFile>>& files) {
  if (t.file < 0 || t.file >= static_cast<int>(files.size()))
    fail("E_FILE", "tensor '" + t.name + "' names file index " + std::to_string(t.file) + " but only " +
                       std::to_string(files.size()) + " files were given");
  const MappedFile& f = *files[t.file];
  if (t.shape != e.shape)
    fail("E_SHAPE", f.path() + ": tensor '" + t.name + "' has shape " + shape_str(t.shape) + ", expected " +
                        shape_str(e.shape) + " from the config");
  const int64_t cols = e.shape.back();
  if (t.packed.scheme != PackedQuant::Scheme::None) {
    if (e.role == Role::Norm || e.name == "tok_embeddings")
      fail("E_DTYPE", f.path() + ": tensor '" + t.name + "' is GPTQ/AWQ-packed; only linear layers (and the output) may be");
    return validate_packed(t, e.shape[0], cols, files);
  }
  if (is_quantized(t.dtype) && cols % kGroup != 0)
    fail("E_SHAPE", f.path() + ": tensor '" + t.name + "' is " + dtype_name(t.dtype) + " but its rows (" +
                        std::to_string(cols) + ") are not whole blocks of 32");
  const int64_t rows = e.shape.size() == 2 ? e.shape[0] : 1;
  const uint64_t bytes = row_bytes(t.dtype, cols) * static_cast<uint64_t>(rows);
  if (t.offset > f.size() || bytes > f.size() - t.offset)
    fail("E_RANGE", f.path() + ": tensor '" + t.name + "' at offset " + std::to_string(t.offset) + " spans " +
                        std::to_string(bytes) + " bytes, beyond the file's " + std::to_string(f.size()));
  (void)spec;
}

void materialize(const TensorSpec& t, const Expected& e, const MappedFile& f, DType target, ThreadPool& pool) {
  Weight& w = *e.dst;
  w.rows = e.shape.size() == 2 ? static_cast<int>(e.shape[0]) : 1;
  w.cols = static_cast<int>(e.shape.back());
  w.type = target;
  w.rowBytes = row_bytes(target, w.cols);
  const uint8_t* src = f.data() + t.offset;
  // Always an owned copy, never the mapping itself: owned buffers of 2 MB and more sit on huge pages,
  // and streaming weights through 4 KB file pages costs single-sequence decode 15-20% of its speed
  // (TLB misses, prefetchers stopping at every page). The file is still read once; the mappings are
  // dropped after the load.
  w.owned = AlignedBuffer(w.bytes(), t.name.c_str(), false);  // every row is written below
  w.data = w.owned.data();
  const int nThreads = pool.size();
  const int rowsPer = (w.rows + nThreads - 1) / nThreads;
  if (target == t.dtype) {
    pool.parallel_for(nThreads, [&](int i) {
      const int r0 = std::min(w.rows, i * rowsPer), r1 = std::min(w.rows, (i + 1) * rowsPer);
      std::memcpy(w.owned.data() + size_t(r0) * w.rowBytes, src + size_t(r0) * w.rowBytes, size_t(r1 - r0) * w.rowBytes);
    });
    return;
  }
  const size_t srcRow = row_bytes(t.dtype, w.cols);
  const int padded = groups_of(w.cols) * kGroup;
  pool.parallel_for(nThreads, [&](int i) {
    std::vector<float> row(padded, 0.f);  // load time: one scratch row per thread
    const int r1 = std::min(w.rows, (i + 1) * rowsPer);
    for (int r = i * rowsPer; r < r1; r++) {
      decode_row(t.dtype, src + r * srcRow, w.cols, row.data());
      encode_row(target, row.data(), w.cols, w.owned.data() + r * w.rowBytes);
    }
  });
}

// A GPTQ/AWQ layer: repacked into Q4_0/Q4_Z/Q8_0 blocks (weights-gptq.h), then converted only when
// another weight format was asked for (to floats: with the columns back in input order).
void materialize_packed(const TensorSpec& t, const Expected& e, const std::vector<std::unique_ptr<MappedFile>>& files,
                        WeightFormat f, ThreadPool& pool) {
  Weight& w = *e.dst;
  repack_packed(t, static_cast<int>(e.shape[0]), static_cast<int>(e.shape[1]), files, pool, w);
  const DType target = target_type(w.type, f, e.role);
  if (target == w.type) return;
  Weight out;
  out.type = target, out.rows = w.rows, out.cols = w.cols, out.rowBytes = row_bytes(target, w.cols);
  if (is_quantized(target)) out.inPerm = w.inPerm;
  out.owned = AlignedBuffer(out.bytes(), t.name.c_str(), false);
  out.data = out.owned.data();
  const int padded = groups_of(w.cols) * kGroup;
  pool.parallel_for(w.rows, [&](int r) {
    std::vector<float> row(padded, 0.f), orig(padded, 0.f);  // load time only
    decode_row(w.type, w.row(r), w.cols, row.data());
    if (!w.inPerm.empty() && !is_quantized(target)) {
      for (int j = 0; j < w.cols; j++) orig[w.inPerm[j]] = row[j];
      row.swap(orig);
    }
    encode_row(target, row.data(), w.cols, out.owned.data() + size_t(r) * out.rowBytes);
  });
  w = std::move(out);
}

}  // namespace

namespace {

size_t panel_bytes(const Weight& w) { return size_t(kPanel) * w.rowBytes; }

void quant_to_panels(const Weight& w, uint8_t* dst, ThreadPool& pool) {
  const int nb = groups_of(w.cols), tail = w.rows % kPanel;
  const size_t pb = panel_bytes(w), bb = w.type == DType::Q8_0   ? sizeof(BlockQ8)
                                         : w.type == DType::Q4_Z ? sizeof(BlockQ4Z)
                                         : w.type == DType::Q8_Z ? sizeof(BlockQ8Z)
                                                                 : sizeof(BlockQ4);
  if (tail) std::memset(dst + size_t(w.rows / kPanel) * pb, 0, pb);  // a last panel's padded rows: zero scales
  pool.parallel_for((w.rows + kPanel - 1) / kPanel, [&](int panel) {
    uint8_t* base = dst + size_t(panel) * pb;
    for (int n = panel * kPanel; n < std::min(w.rows, (panel + 1) * kPanel); n++) {
      const int r = n % kPanel;
      for (int g = 0; g < nb; g++) {
        const uint8_t* block = w.row(n) + g * bb;
        std::memcpy(base + qpanel_scales_at(w.type, g) + r * 2, block, 2);  // the fp16 d
        uint8_t* q = base + qpanel_quants_at(w.type, nb, g) + r * 4;
        if (w.type == DType::Q8_0) {
          const uint8_t* qs = block + offsetof(BlockQ8, qs);
          for (int i = 0; i < kGroup; i++) q[(i / 4) * 64 + i % 4] = qs[i] ^ 0x80;
        } else if (w.type == DType::Q8_Z) {
          std::memcpy(base + qpanel_zeros_at(w.type, nb, g) + r * 2, block + offsetof(BlockQ8Z, z), 2);
          const uint8_t* qs = block + offsetof(BlockQ8Z, qs);
          for (int i = 0; i < kGroup; i++) q[(i / 4) * 64 + i % 4] = qs[i];
        } else if (w.type == DType::Q4_Z) {
          std::memcpy(base + qpanel_zeros_at(w.type, nb, g) + r * 2, block + offsetof(BlockQ4Z, z), 2);
          const uint8_t* qs = block + offsetof(BlockQ4Z, qs);
          for (int i = 0; i < kGroup / 2; i++) q[(i / 4) * 64 + i % 4] = qs[i];
        } else {
          const uint8_t* qs = block + offsetof(BlockQ4, qs);
          for (int i = 0; i < kGroup / 2; i++) q[(i / 4) * 64 + i % 4] = qs[i];
        }
      }
    }
  });
}

}  // namespace

void to_panels(Weight& w, ThreadPool& pool, uint8_t* at) {
  if (w.panels || !has_panel_layout(w.type)) return;
  Weight p;
  p.type = w.type, p.rows = w.rows, p.cols = w.cols, p.rowBytes = w.rowBytes, p.panels = true;
  p.inPerm = std::move(w.inPerm);
  if (!at) {
    p.owned = AlignedBuffer(p.bytes(), "weight panels", false);
    at = p.owned.data();
  }
  if (!is_float_type(w.type)) {
    quant_to_panels(w, at, pool);
  } else {
    const size_t es = w.type == DType::F32 ? 4 : 2, K = size_t(w.cols);
    const int tail = w.rows % kPanel;  // a last panel's padded rows are zeros
    if (tail) std::memset(at + size_t(w.rows / kPanel) * K * kPanel * es, 0, K * kPanel * es);
    pool.parallel_for((w.rows + kPanel - 1) / kPanel, [&](int panel) {
      for (int n = panel * kPanel; n < std::min(w.rows, (panel + 1) * kPanel); n++) {
        const uint8_t* src = w.row(n);
        uint8_t* d = at + (size_t(panel) * K * kPanel + n % kPanel) * es;
        if (es == 4) {
          for (size_t k = 0; k < K; k++) std::memcpy(d + k * kPanel * 4, src + k * 4, 4);
        } else {
          for (size_t k = 0; k < K; k++) std::memcpy(d + k * kPanel * 2, src + k * 2, 2);
        }
      }
    });
  }
  p.data = at;
  w = std::move(p);
}

void to_panels(const std::vector<Weight*>& ws, ThreadPool& pool, std::vector<AlignedBuffer>& arenas) {
  const auto todo = [](const Weight* w) { return w->rows > 0 && !w->panels && has_panel_layout(w->type); };
  const auto panelBytes = [](const Weight* w) { return size_t(w->rows + kPanel - 1) / kPanel * kPanel * w->rowBytes; };
  size_t total = 0;
  for (const Weight* w : ws)
    if (todo(w)) total += (panelBytes(w) + 63) / 64 * 64;
  if (total == 0) return;
  arenas.emplace_back(total, "weight panels", false);  // every byte of every weight is written by to_panels
  uint8_t* at = arenas.back().data();
  for (Weight* w : ws) {
    if (!todo(w)) continue;
    const size_t bytes = (panelBytes(w) + 63) / 64 * 64;
    to_panels(*w, pool, at);  // frees the row-major buffer: the arena's pages fill as the old ones go
    at += bytes;
  }
}

void read_row(const Weight& w, int r, float* out) {
  if (!w.panels) return decode_row(w.type, w.row(r), w.cols, out);
  if (w.type == DType::F32) {
    const float* src = w.f32() + size_t(r / kPanel) * w.cols * kPanel + r % kPanel;
    for (int k = 0; k < w.cols; k++) out[k] = src[size_t(k) * kPanel];
    return;
  }
  if (w.type == DType::F16 || w.type == DType::BF16) {
    const uint8_t* src = w.data + (size_t(r / kPanel) * w.cols * kPanel + r % kPanel) * 2;
    for (int k = 0; k < w.cols; k++) {
      uint16_t h;
      std::memcpy(&h, src + size_t(k) * kPanel * 2, 2);
      out[k] = w.type == DType::F16 ? fp16_to_f32(h) : bf16_to_f32(h);
    }
    return;
  }
  const int nb = groups_of(w.cols), rr = r % kPanel;
  const uint8_t* base = w.data + size_t(r / kPanel) * panel_bytes(w);
  for (int g = 0; g < nb; g++) {
    uint16_t h;
    std::memcpy(&h, base + qpanel_scales_at(w.type, g) + rr * 2, 2);
    const float d = fp16_to_f32(h);
    int zero = 8;
    if (w.type == DType::Q4_Z || w.type == DType::Q8_Z) {
      uint16_t z;
      std::memcpy(&z, base + qpanel_zeros_at(w.type, nb, g) + rr * 2, 2);
      zero = z;
    }
    const uint8_t* q = base + qpanel_quants_at(w.type, nb, g) + rr * 4;
    for (int i = 0; i < kGroup && g * kGroup + i < w.cols; i++) {
      if (w.type == DType::Q8_0) {
        out[g * kGroup + i] = d * static_cast<int8_t>(q[(i / 4) * 64 + i % 4] ^ 0x80);
      } else if (w.type == DType::Q8_Z) {
        out[g * kGroup + i] = d * static_cast<float>(int(q[(i / 4) * 64 + i % 4]) - zero);
      } else {
        const int j = i % (kGroup / 2), b = q[(j / 4) * 64 + j % 4];
        out[g * kGroup + i] = d * static_cast<float>((i < kGroup / 2 ? b & 0xf : b >> 4) - zero);
      }
    }
  }
}

size_t ModelWeights::bytes() const {
  size_t n = tokEmbeddings.bytes() + norm.bytes() + output.bytes();
  for (const auto& l : layers) {
    for (const Weight* w : {&l.attnNorm, &l.ffnNorm, &l.wq, &l.wk, &l.wv, &l.wo, &l.w1, &l.w2, &l.w3}) n += w->bytes();
  }
  return n;
}

std::unique_ptr<ModelWeights> load_weights(const LoadSpec& spec, ThreadPool& pool, ProgressFn progress, void* ctx) {
  check_config(spec.config);
  auto w = std::make_unique<ModelWeights>();
  w->config = spec.config;
  w->layers.resize(spec.config.nLayers);
  std::vector<std::unique_ptr<MappedFile>> files;  // mapped for the load only: every weight is copied out
  for (const auto& path : spec.files) files.push_back(std::make_unique<MappedFile>(path));

  std::unordered_map<std::string, const TensorSpec*> byName;
  for (const auto& t : spec.tensors) {
    if (!byName.emplace(t.name, &t).second) fail("E_SHAPE", "tensor '" + t.name + "' appears twice in the manifest");
  }
  const std::vector<Expected> expected = expected_tensors(spec.config, *w);
  std::vector<const TensorSpec*> found;
  for (const auto& e : expected) {
    auto it = byName.find(e.name);
    if (it == byName.end()) {
      std::string where = spec.files.empty() ? std::string("manifest") : spec.files[0];
      fail("E_SHAPE", where + ": tensor '" + e.name + "' is missing from the manifest");
    }
    validate(*it->second, e, spec, files);
    found.push_back(it->second);
  }
  for (size_t i = 0; i < expected.size(); i++) {
    const TensorSpec& t = *found[i];
    if (t.packed.scheme != PackedQuant::Scheme::None) materialize_packed(t, expected[i], files, spec.weightFormat, pool);
    else materialize(t, expected[i], *files[t.file], target_type(t.dtype, spec.weightFormat, expected[i].role), pool);
    if (progress) progress(ctx, static_cast<int>(i + 1), static_cast<int>(expected.size()));
  }
  return w;
}

}  // namespace flotilla
