#include "test-weights.h"

namespace flotilla::test {

Weight random_weight(DType type, int rows, int cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Weight w;
  w.type = type, w.rows = rows, w.cols = cols, w.rowBytes = row_bytes(type, cols);
  w.owned = AlignedBuffer(w.rowBytes * size_t(rows), "test weights");
  w.data = w.owned.data();
  std::vector<float> row(size_t(groups_of(cols)) * kGroup, 0.f);
  for (int r = 0; r < rows; r++) {
    for (int c = 0; c < cols; c++) row[c] = u(rng);
    encode_row(type, row.data(), cols, w.owned.data() + w.rowBytes * size_t(r));
  }
  return w;
}

std::vector<float> random_acts(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> x(n);
  for (size_t i = 0; i < n; i++) x[i] = (i % 97 == 5) ? 8.f * u(rng) : u(rng);
  return x;
}

}  // namespace flotilla::test
