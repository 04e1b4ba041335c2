// The AVX-512 set's attention of one query row (kernels-avx512-attn.cpp).
#pragma once
#include "kernels.h"

namespace flotilla::avx512 {

bool attend(const float* q, const KvRows& k, const KvRows& v, int n, int hd, float scale, float* out);
bool attend_heads(const float* q, const KvRows& k, const KvRows& v, int nHeads, int group, size_t headStride, int n, int hd,
                  float scale, float* out);

}  // namespace flotilla::avx512
