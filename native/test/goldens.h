// Reads the expected greedy ids of one model from goldens.json (test/fixtures/models) — a small scan for
// "<model>" then "greedy_from_bos_48": [ ... ], enough for that file's fixed shape.
#pragma once
#include <string>
#include <vector>

namespace flotilla::test {

std::vector<int> golden_greedy(const std::string& jsonPath, const std::string& model);  // throws on a missing key

}  // namespace flotilla::test
