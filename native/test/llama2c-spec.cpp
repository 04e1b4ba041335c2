#include "llama2c-spec.h"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace flotilla::test {

LoadSpec llama2c_spec(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  int32_t h[7];
  if (!f.read(reinterpret_cast<char*>(h), sizeof h)) throw std::runtime_error(path + ": cannot read the header");
  LoadSpec s;
  ModelConfig& c = s.config;
  c.dim = h[0], c.hiddenDim = h[1], c.nLayers = h[2], c.nHeads = h[3], c.nKvHeads = h[4];
  c.vocabSize = std::abs(h[5]), c.maxSeqLen = h[6];
  c.tiedEmbeddings = h[5] > 0;
  s.files = {path};
  uint64_t offset = 28;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    s.tensors.push_back({name, 0, offset, DType::F32, shape});
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    offset += uint64_t(n) * 4;
  };
  auto per_layer = [&](const std::string& name, std::vector<int64_t> shape) {
    for (int l = 0; l < c.nLayers; l++) add("layers." + std::to_string(l) + "." + name, shape);
  };
  const int64_t dim = c.dim, kv = int64_t(c.dim / c.nHeads) * c.nKvHeads, hid = c.hiddenDim;
  add("tok_embeddings", {c.vocabSize, dim});
  per_layer("attention_norm", {dim});
  per_layer("wq", {dim, dim});
  per_layer("wk", {kv, dim});
  per_layer("wv", {kv, dim});
  per_layer("wo", {dim, dim});
  per_layer("ffn_norm", {dim});
  per_layer("w1", {hid, dim});
  per_layer("w2", {dim, hid});
  per_layer("w3", {hid, dim});
  add("norm", {dim});
  offset += uint64_t(c.maxSeqLen) * (c.dim / c.nHeads) * 4;  // the two unused RoPE tables
  if (!c.tiedEmbeddings) add("output", {c.vocabSize, dim});
  return s;
}

}  // namespace flotilla::test
