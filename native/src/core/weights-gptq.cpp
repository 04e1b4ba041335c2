// GPTQ / AWQ repacking (weights-gptq.h): checks first, on one thread (a throw inside the pool would
// not reach the caller), then the blocks of 16 outputs in parallel: 16 consecutive int32 of a qweight
// row are one cache line, so each block reads its columns of the packed matrix as whole lines.
#include "weights-gptq.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>

#include "error.h"
#include "thread-pool.h"

namespace flotilla {

namespace {

constexpr int kAwqNibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};  // output 8c + j sits at nibble kAwqNibble[j]

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); i++) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

const char* scheme_name(const PackedQuant& q) { return q.scheme == PackedQuant::Scheme::Awq ? "AWQ" : "GPTQ"; }

int groups_in(const PackedQuant& q, int64_t cols) {
  return q.groupSize <= 0 ? 1 : static_cast<int>((cols + q.groupSize - 1) / q.groupSize);
}

void check_part(const PackedPart& p, const char* role, const std::vector<int64_t>& want, bool isFloat,
                const std::string& layer, const PackedQuant& q, const std::vector<std::unique_ptr<MappedFile>>& files) {
  const std::string what = std::string(scheme_name(q)) + " " + std::to_string(q.bits) + "-bit, group size " +
                           (q.groupSize <= 0 ? std::string("per channel") : std::to_string(q.groupSize));
  if (p.file < 0)
    fail("E_SHAPE", "tensor '" + layer + "." + role + "' is missing: a " + what + " layer needs qweight, qzeros and scales");
  if (p.file >= static_cast<int>(files.size()))
    fail("E_FILE", "tensor '" + p.name + "' names file index " + std::to_string(p.file) + " of " + std::to_string(files.size()));
  const MappedFile& f = *files[p.file];
  if (isFloat ? (p.int32 || !is_float_type(p.dtype)) : !p.int32)
    fail("E_DTYPE", f.path() + ": tensor '" + p.name + "' has the wrong element type for a " + what + " " + role + " (" +
                        (isFloat ? "f16, bf16 or f32" : "int32") + ")");
  if (p.shape != want)
    fail("E_SHAPE", f.path() + ": tensor '" + p.name + "' has shape " + shape_str(p.shape) + ", expected " + shape_str(want) +
                        " (" + what + ")");
  uint64_t n = 1;
  for (int64_t d : p.shape) n *= uint64_t(d);
  const uint64_t bytes = n * (p.int32 || p.dtype == DType::F32 ? 4 : 2);
  if (p.offset > f.size() || bytes > f.size() - p.offset)
    fail("E_RANGE", f.path() + ": tensor '" + p.name + "' at offset " + std::to_string(p.offset) + " spans " + std::to_string(bytes) +
                        " bytes, beyond the file's " + std::to_string(f.size()));
}

inline uint32_t word(const uint8_t* base, size_t i) {
  uint32_t v;
  std::memcpy(&v, base + 4 * i, 4);
  return v;
}

// The scale as fp16 bits: f16 as stored; bf16/f32 scales are rounded to fp16 (a change only where a
// scale has more precision than fp16 holds).
inline uint16_t scale_bits(DType t, const uint8_t* base, size_t i) {
  uint16_t h;
  if (t == DType::F16) {
    std::memcpy(&h, base + 2 * i, 2);
    return h;
  }
  if (t == DType::BF16) {
    std::memcpy(&h, base + 2 * i, 2);
    return f32_to_fp16(bf16_to_f32(h));
  }
  float f;
  std::memcpy(&f, base + 4 * i, 4);
  return f32_to_fp16(f);
}

struct Source {
  const PackedQuant& q;
  int rows, cols, groups, pack, mask;
  const uint8_t *qweight, *qzeros, *scales;

  int zero(int g, int n) const {
    if (q.scheme == PackedQuant::Scheme::Awq) return int(word(qzeros, size_t(g) * (rows / 8) + n / 8) >> (4 * kAwqNibble[n % 8])) & 15;
    return (int(word(qzeros, size_t(g) * (rows / pack) + n / pack) >> (q.bits * (n % pack))) & mask) + q.zeroOffset;
  }
  // The quants of inputs [0, cols) of outputs n0 .. n0 + nr - 1 into out[r * cols + k].
  void quants(int n0, int nr, uint8_t* out) const {
    if (q.scheme == PackedQuant::Scheme::Awq) {
      for (int k = 0; k < cols; k++)
        for (int r = 0; r < nr; r++) {
          const int n = n0 + r;
          out[size_t(r) * cols + k] = uint8_t((word(qweight, size_t(k) * (rows / 8) + n / 8) >> (4 * kAwqNibble[n % 8])) & 15);
        }
      return;
    }
    for (int kk = 0; kk < cols / pack; kk++)
      for (int r = 0; r < nr; r++) {
        const uint32_t v = word(qweight, size_t(kk) * rows + n0 + r);
        for (int j = 0; j < pack; j++) out[size_t(r) * cols + kk * pack + j] = uint8_t((v >> (q.bits * j)) & uint32_t(mask));
      }
  }
};

}  // namespace

void validate_packed(const TensorSpec& t, int64_t rows, int64_t cols, const std::vector<std::unique_ptr<MappedFile>>& files) {
  const PackedQuant& q = t.packed;
  const bool awq = q.scheme == PackedQuant::Scheme::Awq;
  const std::string layer = q.qweight.name.size() > 8 ? q.qweight.name.substr(0, q.qweight.name.size() - 8) : t.name;
  if (!(q.bits == 4 || (q.bits == 8 && !awq)))
    fail("E_DTYPE", "tensor '" + q.qweight.name + "': " + scheme_name(q) + " with " + std::to_string(q.bits) +
                        " bits is not supported (GPTQ 4 and 8, AWQ 4)");
  if (q.groupSize > 0 && q.groupSize % kGroup != 0)
    fail("E_SHAPE", "tensor '" + q.qweight.name + "': group size " + std::to_string(q.groupSize) + " is not a multiple of 32");
  const int pack = 32 / q.bits, G = groups_in(q, cols);
  if (cols % pack != 0 || rows % pack != 0)
    fail("E_SHAPE", "tensor '" + q.qweight.name + "': " + std::to_string(rows) + " outputs x " + std::to_string(cols) +
                        " inputs are not whole int32 words of " + std::to_string(pack) + " values");
  check_part(q.qweight, "qweight", awq ? std::vector<int64_t>{cols, rows / 8} : std::vector<int64_t>{cols / pack, rows}, false, layer, q, files);
  check_part(q.qzeros, "qzeros", {G, rows / pack}, false, layer, q, files);
  check_part(q.scales, "scales", {G, rows}, true, layer, q, files);
  if (q.gIdx.file >= 0) check_part(q.gIdx, "g_idx", {cols}, false, layer, q, files);
}

void repack_packed(const TensorSpec& t, int rows, int cols, const std::vector<std::unique_ptr<MappedFile>>& files,
                   ThreadPool& pool, Weight& w) {
  const PackedQuant& q = t.packed;
  const int G = groups_in(q, cols), pack = 32 / q.bits;
  const auto at = [&](const PackedPart& p) { return files[p.file]->data() + p.offset; };
  const Source src{q, rows, cols, G, pack, (1 << q.bits) - 1, at(q.qweight), at(q.qzeros), at(q.scales)};

  // The group of each input, checked; the column order (stable sort by group) when it is not ascending.
  std::vector<int32_t> group(cols);
  for (int k = 0; k < cols; k++) group[k] = q.groupSize <= 0 ? 0 : k / q.groupSize;
  if (q.gIdx.file >= 0) {
    for (int k = 0; k < cols; k++) {
      const int32_t g = static_cast<int32_t>(word(at(q.gIdx), k));
      if (g < 0 || g >= G)
        fail("E_SHAPE", files[q.gIdx.file]->path() + ": tensor '" + q.gIdx.name + "' maps input " + std::to_string(k) +
                            " to group " + std::to_string(g) + ", outside 0.." + std::to_string(G - 1));
      group[k] = g;
    }
  }
  std::vector<int32_t> perm(cols);
  std::iota(perm.begin(), perm.end(), 0);
  const bool ascending = std::is_sorted(group.begin(), group.end());
  if (!ascending) std::stable_sort(perm.begin(), perm.end(), [&](int32_t a, int32_t b) { return group[a] < group[b]; });
  const int nb = groups_of(cols);
  std::vector<int32_t> blockGroup(nb);
  for (int b = 0; b < nb; b++) {
    blockGroup[b] = group[perm[b * kGroup]];
    for (int i = 1; i < kGroup && b * kGroup + i < cols; i++)
      if (group[perm[b * kGroup + i]] != blockGroup[b])
        fail("E_SHAPE", "tensor '" + (q.gIdx.file >= 0 ? q.gIdx.name : q.qweight.name) + "': inputs " + std::to_string(b * kGroup) + ".." +
                            std::to_string(b * kGroup + kGroup - 1) + " (in group order) span two groups: groups must be whole blocks of 32 inputs");
  }

  // Which block type: the engine's symmetric ones when every zero is the midpoint.
  const int mid = 1 << (q.bits - 1);
  bool symmetric = true;
  for (int g = 0; g < G && symmetric; g++)
    for (int n = 0; n < rows && symmetric; n++) symmetric = src.zero(g, n) == mid;
  w.type = q.bits == 8 ? (symmetric ? DType::Q8_0 : DType::Q8_Z) : symmetric ? DType::Q4_0 : DType::Q4_Z;
  w.rows = rows, w.cols = cols, w.panels = false;
  w.rowBytes = row_bytes(w.type, cols);
  w.owned = AlignedBuffer(w.bytes(), t.name.c_str(), true);  // zeroed: the padding of a last short block
  w.data = w.owned.data();
  if (!ascending) w.inPerm = perm;

  const int chunks = (rows + kPanel - 1) / kPanel;
  pool.parallel_for(chunks, [&](int c) {
    const int n0 = c * kPanel, nr = std::min(kPanel, rows - n0);
    std::vector<uint8_t> qs(size_t(nr) * cols);  // load time: one scratch block of rows per task
    src.quants(n0, nr, qs.data());
    for (int r = 0; r < nr; r++) {
      const int n = n0 + r;
      uint8_t* row = w.owned.data() + size_t(n) * w.rowBytes;
      const uint8_t* qr = qs.data() + size_t(r) * cols;
      for (int b = 0; b < nb; b++) {
        const int g = blockGroup[b];
        const uint16_t d = scale_bits(q.scales.dtype, src.scales, size_t(g) * rows + n);
        const int m = std::min(kGroup, cols - b * kGroup);
        if (w.type == DType::Q8_0) {
          auto* blk = reinterpret_cast<BlockQ8*>(row) + b;
          blk->d = d;
          for (int i = 0; i < m; i++) blk->qs[i] = static_cast<int8_t>(int(qr[perm[b * kGroup + i]]) - 128);
          continue;
        }
        if (w.type == DType::Q8_Z) {
          auto* blk = reinterpret_cast<BlockQ8Z*>(row) + b;
          blk->d = d;
          blk->z = static_cast<uint16_t>(src.zero(g, n));
          for (int i = 0; i < m; i++) blk->qs[i] = qr[perm[b * kGroup + i]];
          continue;
        }
        uint8_t nib[kGroup] = {0};
        for (int i = 0; i < m; i++) nib[i] = qr[perm[b * kGroup + i]];
        uint8_t* out;
        if (w.type == DType::Q4_0) {
          auto* blk = reinterpret_cast<BlockQ4*>(row) + b;
          blk->d = d;
          if (m < kGroup) std::fill(nib + m, nib + kGroup, uint8_t(8));  // padding decodes to 0
          out = blk->qs;
        } else {
          auto* blk = reinterpret_cast<BlockQ4Z*>(row) + b;
          blk->d = d;
          blk->z = static_cast<uint16_t>(src.zero(g, n));
          out = blk->qs;
        }
        for (int i = 0; i < kGroup / 2; i++) out[i] = uint8_t(nib[i] | (nib[i + kGroup / 2] << 4));
      }
    }
  });
}

}  // namespace flotilla
