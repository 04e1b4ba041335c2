#include "lora.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "error.h"
#include "mapped-file.h"
#include "thread-pool.h"

namespace flotilla {

namespace {

const char* const kNames[kLoraModules] = {"wq", "wk", "wv", "wo", "w1", "w3", "w2"};

size_t round64(size_t n) { return (n + 63) / 64 * 64; }
size_t padded_rows(int rows) { return size_t(rows + kPanel - 1) / kPanel * kPanel; }

// Bytes reserved in a slot for one module's A (row-major) and B (panels: out padded to 16 rows) at rank r.
size_t a_bytes(int in, int r) { return round64(size_t(r) * size_t(in) * 4); }  // row-major
size_t b_bytes(int out, int r) { return round64(padded_rows(out) * size_t(r) * 4); }

std::string shape_str(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); i++) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

// "layers.{i}.{module}.lora_{a|b}" → layer, module, isB; false when the name is not of that form.
bool parse_name(const std::string& name, int nLayers, int* layer, int* module, bool* isB) {
  if (name.rfind("layers.", 0) != 0) return false;
  size_t p = 7, q = name.find('.', p);
  if (q == std::string::npos || q == p || q - p > 6) return false;
  for (size_t i = p; i < q; i++)
    if (name[i] < '0' || name[i] > '9') return false;
  *layer = std::stoi(name.substr(p, q - p));
  if (*layer >= nLayers) return false;
  const size_t r = name.find('.', q + 1);
  if (r == std::string::npos) return false;
  const std::string mod = name.substr(q + 1, r - q - 1), tail = name.substr(r + 1);
  if (tail != "lora_a" && tail != "lora_b") return false;
  *isB = tail == "lora_b";
  for (int m = 0; m < kLoraModules; m++)
    if (mod == kNames[m]) return *module = m, true;
  return false;
}

}  // namespace

const char* lora_module_name(int m) { return kNames[m]; }

void lora_module_dims(const ModelConfig& c, int m, int* out, int* in) {
  const int q = c.nHeads * c.headDim(), kv = c.kvDim();
  switch (m) {
    case kLoraQ: *out = q, *in = c.dim; break;
    case kLoraK: case kLoraV: *out = kv, *in = c.dim; break;
    case kLoraO: *out = c.dim, *in = q; break;
    case kLoraGate: case kLoraUp: *out = c.hiddenDim, *in = c.dim; break;
    default: *out = c.dim, *in = c.hiddenDim; break;  // down
  }
}

LoraPool::LoraPool(const ModelConfig& c, int maxLoras, int maxRank, bool panels) : c_(c), maxRank_(maxRank), panels_(panels) {
  if (maxLoras < 1 || maxLoras > 1024) fail("E_SHAPE", "maxLoras must be in 1..1024, got " + std::to_string(maxLoras));
  if (maxRank < 1 || maxRank > 256) fail("E_SHAPE", "maxLoraRank must be in 1..256, got " + std::to_string(maxRank));
  buffer_ = AlignedBuffer(slot_bytes() * size_t(maxLoras), "LoRA adapter pool");
  slots_.resize(maxLoras);
}

size_t LoraPool::slot_bytes() const {
  size_t n = 0;
  for (int m = 0; m < kLoraModules; m++) {
    int out, in;
    lora_module_dims(c_, m, &out, &in);
    n += a_bytes(in, maxRank_) + b_bytes(out, maxRank_);
  }
  return n * size_t(c_.nLayers);
}

void LoraPool::load(int slotIndex, const LoraSpec& spec, ThreadPool& pool) {
  if (slotIndex < 0 || slotIndex >= maxLoras())
    fail("E_SHAPE", "LoRA slot " + std::to_string(slotIndex) + " is outside 0.." + std::to_string(maxLoras() - 1));
  if (!(spec.scale == spec.scale)) fail("E_SHAPE", "LoRA scale is NaN");
  std::vector<std::unique_ptr<MappedFile>> files;
  for (const auto& f : spec.files) files.push_back(std::make_unique<MappedFile>(f));
  // Pass 1: every tensor checked, nothing written.
  const int L = c_.nLayers;
  std::vector<const TensorSpec*> found(size_t(L) * kLoraModules * 2, nullptr);
  for (const TensorSpec& t : spec.tensors) {
    int layer, m;
    bool isB;
    if (!parse_name(t.name, L, &layer, &m, &isB))
      fail("E_SHAPE", "LoRA tensor '" + t.name + "' is not layers.{0.." + std::to_string(L - 1) + "}.{wq|wk|wv|wo|w1|w2|w3}.lora_{a|b}");
    const TensorSpec*& slotOf = found[(size_t(layer) * kLoraModules + m) * 2 + isB];
    if (slotOf) fail("E_SHAPE", "LoRA tensor '" + t.name + "' is given twice");
    slotOf = &t;
    if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16)
      fail("E_DTYPE", "LoRA tensor '" + t.name + "' is " + dtype_name(t.dtype) + "; adapters are read as f32, f16 or bf16");
    if (t.file < 0 || t.file >= int(files.size())) fail("E_FILE", "LoRA tensor '" + t.name + "' names a file index out of range");
    if (t.shape.size() != 2) fail("E_SHAPE", "LoRA tensor '" + t.name + "' has shape " + shape_str(t.shape) + ", expected 2 dimensions");
    const uint64_t bytes = uint64_t(t.shape[0]) * uint64_t(t.shape[1]) * (t.dtype == DType::F32 ? 4 : 2);
    const MappedFile& f = *files[t.file];
    if (t.offset > f.size() || bytes > f.size() - t.offset)
      fail("E_RANGE", f.path() + ": LoRA tensor '" + t.name + "' spans bytes beyond the file's " + std::to_string(f.size()));
  }
  for (int l = 0; l < L; l++) {
    for (int m = 0; m < kLoraModules; m++) {
      const TensorSpec* a = found[(size_t(l) * kLoraModules + m) * 2];
      const TensorSpec* b = found[(size_t(l) * kLoraModules + m) * 2 + 1];
      if (!a && !b) continue;
      const std::string base = "layers." + std::to_string(l) + "." + kNames[m];
      if (!a || !b) fail("E_SHAPE", "LoRA tensor '" + base + (a ? ".lora_b" : ".lora_a") + "' is missing (its pair is given)");
      int out, in;
      lora_module_dims(c_, m, &out, &in);
      const int64_t r = a->shape[0];
      if (r < 1 || r > maxRank_)
        fail("E_SHAPE", "LoRA tensor '" + a->name + "' has rank " + std::to_string(r) + "; this engine holds ranks 1.." + std::to_string(maxRank_));
      if (a->shape[1] != in)
        fail("E_SHAPE", "LoRA tensor '" + a->name + "' has shape " + shape_str(a->shape) + ", expected [" + std::to_string(r) + ", " + std::to_string(in) + "]");
      if (b->shape[0] != out || b->shape[1] != r)
        fail("E_SHAPE", "LoRA tensor '" + b->name + "' has shape " + shape_str(b->shape) + ", expected [" + std::to_string(out) + ", " + std::to_string(r) + "]");
    }
  }
  // Pass 2: decode into the slot's region.
  unload(slotIndex);
  LoraSlot& s = slots_[slotIndex];
  s.layers.clear();
  s.layers.resize(L);
  uint8_t* at = buffer_.data() + slot_bytes() * size_t(slotIndex);
  for (int l = 0; l < L; l++) {
    for (int m = 0; m < kLoraModules; m++) {
      int out, in;
      lora_module_dims(c_, m, &out, &in);
      uint8_t* aAt = at;
      uint8_t* bAt = at + a_bytes(in, maxRank_);
      at = bAt + b_bytes(out, maxRank_);
      const TensorSpec* ta = found[(size_t(l) * kLoraModules + m) * 2];
      const TensorSpec* tb = found[(size_t(l) * kLoraModules + m) * 2 + 1];
      if (!ta) continue;
      LoraMatrices& lm = s.layers[l][m];
      lm.rank = int(ta->shape[0]);
      const bool permute = spec.halfToInterleaved && (m == kLoraQ || m == kLoraK);
      const int hd = c_.headDim();
      // Destination row d of a permuted B reads the half-layout row of the same head: pair (2i + j) ← j * hd/2 + i.
      const auto srcRow = [&](int d) { return permute ? d / hd * hd + (d % hd % 2) * (hd / 2) + d % hd / 2 : d; };
      // Held in the file's own type (f32, f16 or bf16: the kernels read all three), so nothing is rounded
      // at load and a bf16 adapter streams half the bytes of an f32 one; the scale is applied to B's output.
      const auto fill = [&](const TensorSpec& t, Weight& w, uint8_t* dst, bool isB) {
        w = Weight();
        const size_t es = t.dtype == DType::F32 ? 4 : 2;
        w.type = t.dtype, w.rows = int(t.shape[0]), w.cols = int(t.shape[1]), w.rowBytes = size_t(w.cols) * es;
        w.owned = AlignedBuffer(w.bytes(), "LoRA staging", false);
        w.data = w.owned.data();
        const uint8_t* src = files[t.file]->data() + t.offset;
        for (int r = 0; r < w.rows; r++)
          std::memcpy(w.owned.data() + size_t(r) * w.rowBytes, src + size_t(isB ? srcRow(r) : r) * w.rowBytes, w.rowBytes);
        if (panels_ && isB) {  // B (out, r): panels, 16 output rows per vector over the r steps; A (r, in) stays
                               // row-major: r rows of long dot products, no padding of r to 16 rows
          to_panels(w, pool, dst);  // drops the staging buffer
        } else {
          std::memcpy(dst, w.data, w.bytes());
          w.owned = AlignedBuffer();
          w.data = dst;
        }
      };
      fill(*ta, lm.a, aAt, false);
      fill(*tb, lm.b, bAt, true);
      s.maxRank = std::max(s.maxRank, lm.rank);
    }
  }
  s.scale = spec.scale;
  s.loaded = true;
}

void LoraPool::unload(int slotIndex) {
  if (slotIndex < 0 || slotIndex >= maxLoras()) return;
  slots_[slotIndex] = LoraSlot();
}

void LoraPool::check_batch(const StepBatch& b) const {
  if (!b.loraSlots) return;
  if (b.lenLoraSlots < b.numSeqs) fail("E_BATCH", "step batch: loraSlots is shorter than numSeqs");
  for (int s = 0; s < b.numSeqs; s++) {
    const int v = b.loraSlots[s];
    if (v < 0) continue;
    if (v >= maxLoras()) fail("E_BATCH", "step batch: loraSlots[" + std::to_string(s) + "] = " + std::to_string(v) + " is outside 0.." + std::to_string(maxLoras() - 1));
    if (!slots_[v].loaded) fail("E_BATCH", "step batch: loraSlots[" + std::to_string(s) + "] names LoRA slot " + std::to_string(v) + ", which holds no adapter");
  }
}

void LoraGroups::build(const StepBatch& b, int maxLoras) {
  slot.clear(), start.clear(), rows.clear();
  if (!b.loraSlots) return;
  // Counting sort by slot: group order is slot order, rows keep their order inside a group.
  std::vector<int32_t> count(size_t(maxLoras) + 1, 0);
  for (int s = 0; s < b.numSeqs; s++)
    if (b.loraSlots[s] >= 0) count[b.loraSlots[s]] += b.queryStartLoc[s + 1] - b.queryStartLoc[s];
  for (int v = 0; v < maxLoras; v++) {
    if (count[v] == 0) continue;
    slot.push_back(v);
    start.push_back(int32_t(rows.size()));
    const size_t first = rows.size();
    rows.resize(first + count[v]);
    size_t at = first;
    for (int s = 0; s < b.numSeqs; s++)
      if (b.loraSlots[s] == v)
        for (int t = b.queryStartLoc[s]; t < b.queryStartLoc[s + 1]; t++) rows[at++] = t;
  }
  start.push_back(int32_t(rows.size()));
}

}  // namespace flotilla
