#include "kernels-f32act.h"

#include <algorithm>
#include <vector>

namespace flotilla {

void matmul_f32act_decoded(MatmulFn floatMatmul, const Weight& w, const MatmulIn& in, float* y, int ldy, int n0, int n1) {
  constexpr int kRows = 4;
  // 16 floats of slack per row keep each row 64-byte aligned relative to the first
  const size_t stride = (size_t(w.cols) + 15) / 16 * 16;
  thread_local std::vector<float> rows;
  if (rows.size() < kRows * stride) rows.resize(kRows * stride);
  Weight f;
  f.type = DType::F32;
  f.cols = w.cols;
  f.rowBytes = stride * 4;
  f.data = reinterpret_cast<const uint8_t*>(rows.data());
  for (int n = n0; n < n1; n += kRows) {
    const int R = std::min(kRows, n1 - n);
    for (int r = 0; r < R; r++) decode_row(w.type, w.row(n + r), w.cols, rows.data() + r * stride);
    f.rows = R;
    floatMatmul(f, in, y + n, ldy, 0, R);
  }
}

}  // namespace flotilla
