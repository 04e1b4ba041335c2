#include "kv-payload.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <string>

#include "error.h"

namespace flotilla {

namespace {

constexpr char kMagic[4] = {'F', 'L', 'K', 'V'};

// FNV-1a, 64 bits: not cryptographic; it tells models apart, it does not authenticate them.
struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  }
  template <class T>
  void value(T v) { bytes(&v, sizeof v); }
};

void hash_weight(Fnv& f, const Weight& w) {
  f.value(uint32_t(w.type)), f.value(w.rows), f.value(w.cols);
  const size_t n = w.bytes(), window = 256;
  if (!w.data || n == 0) return;
  for (size_t at : {size_t(0), n / 2, n > window ? n - window : 0}) f.bytes(w.data + std::min(at, n), std::min(window, n - std::min(at, n)));
}

void put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }  // the supported targets are little-endian
void put64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t get32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
uint64_t get64(const uint8_t* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }

const char* dtype_name(uint32_t d) { return d == 0 ? "f32" : d == 1 ? "f16" : "unknown"; }

std::string mismatch(const char* what, uint64_t theirs, uint64_t ours) {
  return std::string("the KV payload's ") + what + " is " + std::to_string(theirs) + ", this engine's " + std::to_string(ours);
}

}  // namespace

uint64_t model_fingerprint(const ModelWeights& w) {
  Fnv f;
  const ModelConfig& c = w.config;
  for (int v : {c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.vocabSize, c.maxSeqLen}) f.value(v);
  f.value(c.ropeTheta), f.value(uint32_t(c.ropeLayout)), f.value(c.normEps), f.value(uint8_t(c.tiedEmbeddings));
  hash_weight(f, w.tokEmbeddings), hash_weight(f, w.norm), hash_weight(f, w.output);
  for (const LayerWeights& l : w.layers)
    for (const Weight* m : {&l.attnNorm, &l.ffnNorm, &l.wq, &l.wk, &l.wv, &l.wo, &l.w1, &l.w2, &l.w3}) hash_weight(f, *m);
  return f.h;
}

void write_kv_header(const KvPoolInfo& p, int numTokens, int numBlocks, uint8_t* dst) {
  if (numTokens < 1 || numBlocks != int((int64_t(numTokens) + p.blockSize - 1) / p.blockSize))
    fail("E_KV_BLOCKS", std::to_string(numTokens) + " tokens take " + std::to_string((int64_t(numTokens) + p.blockSize - 1) / p.blockSize) +
                            " blocks of " + std::to_string(p.blockSize) + ", got " + std::to_string(numBlocks));
  std::memset(dst, 0, kKvHeaderBytes);
  std::memcpy(dst, kMagic, 4);
  put32(dst + 4, kKvPayloadVersion);
  put64(dst + 8, p.fingerprint);
  put32(dst + 16, uint32_t(p.dtype));
  put32(dst + 20, p.blockSize);
  put32(dst + 24, p.nLayers);
  put32(dst + 28, p.nKvHeads);
  put32(dst + 32, p.headDim);
  put32(dst + 36, uint32_t(numTokens));
  put32(dst + 40, uint32_t(numBlocks));
  put64(dst + 48, p.blockBytes);
}

KvPayloadSize check_kv_payload(const KvPoolInfo& p, const uint8_t* src, size_t len) {
  if (len < kKvHeaderBytes || std::memcmp(src, kMagic, 4) != 0) fail("E_KV_FORMAT", "not a KV payload (no FLKV header)");
  if (get32(src + 4) != kKvPayloadVersion) fail("E_KV_FORMAT", mismatch("format version", get32(src + 4), kKvPayloadVersion));
  if (get64(src + 8) != p.fingerprint) fail("E_KV_MODEL", "the KV payload was computed by another model (fingerprints differ)");
  if (get32(src + 24) != p.nLayers || get32(src + 28) != p.nKvHeads || get32(src + 32) != p.headDim)
    fail("E_KV_MODEL", "the KV payload's shape (layers, KV heads, head dim) differs from this engine's model");
  const uint32_t dtype = get32(src + 16);
  if (dtype != uint32_t(p.dtype))
    fail("E_KV_DTYPE", std::string("the KV payload holds ") + dtype_name(dtype) + " K/V, this engine's pool " + dtype_name(uint32_t(p.dtype)));
  if (get32(src + 20) != p.blockSize) fail("E_KV_BLOCK_SIZE", mismatch("block size", get32(src + 20), p.blockSize));
  if (get64(src + 48) != p.blockBytes) fail("E_KV_FORMAT", mismatch("bytes per block", get64(src + 48), p.blockBytes));
  const uint32_t tokens = get32(src + 36), blocks = get32(src + 40);
  if (tokens < 1 || tokens > uint32_t(INT32_MAX) || blocks != (uint64_t(tokens) + p.blockSize - 1) / p.blockSize)
    fail("E_KV_FORMAT", "the KV payload's token count (" + std::to_string(tokens) + ") and block count (" + std::to_string(blocks) + ") disagree");
  const uint64_t want = kKvHeaderBytes + p.blockBytes * uint64_t(blocks);
  if (len != want) fail("E_KV_FORMAT", "the KV payload is " + std::to_string(len) + " bytes; its header says " + std::to_string(want));
  return {int(tokens), int(blocks)};
}

}  // namespace flotilla
