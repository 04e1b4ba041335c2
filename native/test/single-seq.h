// Drives an Engine the way the scheduler would for independent sequences with contiguous KV blocks:
// each has its own block range, and a step carries a prefill chunk or one decode token per sequence.
#pragma once
#include <vector>

#include "../src/core/engine.h"

namespace flotilla::test {

class SeqDriver {
 public:
  SeqDriver(Engine& engine, int numSeqs, int maxLen);

  // Appends `tokens[s]` to every sequence s in one step and returns the greedy next token of each.
  std::vector<int> step(const std::vector<std::vector<int>>& tokens);

 private:
  Engine& engine_;
  int numSeqs_, blocksPerSeq_;
  std::vector<int> len_;
  std::vector<int32_t> ids_, pos_, slots_, qsl_, ctx_, tables_, i32Zero_, i32One_, offsets_, topK_;
  std::vector<uint8_t> mask_;
  std::vector<float> temp_, topP_, minP_, rep_, zeroF_;
  std::vector<uint32_t> seeds_;
};

}  // namespace flotilla::test
