// cuBLASLt, loaded at run time with dlopen so the addon neither links nor needs it: where
// libcublasLt.so.{13,12} is found, bf16/f16 GEMMs with more than 8 tokens go through it; otherwise
// gemm.cu's own tensor-core kernel runs. The few declarations needed are written out here (values
// from cublasLt.h / library_types.h), so building needs no cuBLAS headers either.
#include <dlfcn.h>

#include <mutex>

#include "kernels.cuh"

namespace flotilla {
namespace cuda {

namespace {

using Handle = void*;
using Desc = void*;
using Layout = void*;
constexpr int kComputeF32 = 68;                   // CUBLAS_COMPUTE_32F
constexpr int kR32F = 0, kR16F = 2, kR16BF = 14;  // cudaDataType
constexpr int kDescTransA = 3, kDescTransB = 4;   // CUBLASLT_MATMUL_DESC_TRANSA / _TRANSB
constexpr int kOpN = 0, kOpT = 1;

struct Api {
  int (*create)(Handle*);
  int (*descCreate)(Desc*, int, int);
  int (*descDestroy)(Desc);
  int (*descSet)(Desc, int, const void*, size_t);
  int (*layoutCreate)(Layout*, int, uint64_t, uint64_t, int64_t);
  int (*layoutDestroy)(Layout);
  int (*matmul)(Handle, Desc, const void*, const void*, Layout, const void*, Layout, const void*, const void*, Layout,
                void*, Layout, const void*, void*, size_t, cudaStream_t);
  Handle handle = nullptr;
  void* workspace = nullptr;
  size_t workspaceBytes = 32u << 20;
  bool ok = false;
};

Api& api() {
  static Api a;
  static std::once_flag once;
  std::call_once(once, [] {
    if (const char* off = getenv("FLOTILLA_CUBLASLT"); off && off[0] == '0') return;
    void* lib = nullptr;
    for (const char* name : {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"}) {
      if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
    }
    if (!lib) return;
    auto sym = [&](const char* n) { return dlsym(lib, n); };
    a.create = reinterpret_cast<decltype(a.create)>(sym("cublasLtCreate"));
    a.descCreate = reinterpret_cast<decltype(a.descCreate)>(sym("cublasLtMatmulDescCreate"));
    a.descDestroy = reinterpret_cast<decltype(a.descDestroy)>(sym("cublasLtMatmulDescDestroy"));
    a.descSet = reinterpret_cast<decltype(a.descSet)>(sym("cublasLtMatmulDescSetAttribute"));
    a.layoutCreate = reinterpret_cast<decltype(a.layoutCreate)>(sym("cublasLtMatrixLayoutCreate"));
    a.layoutDestroy = reinterpret_cast<decltype(a.layoutDestroy)>(sym("cublasLtMatrixLayoutDestroy"));
    a.matmul = reinterpret_cast<decltype(a.matmul)>(sym("cublasLtMatmul"));
    if (!a.create || !a.descCreate || !a.descDestroy || !a.descSet || !a.layoutCreate || !a.layoutDestroy || !a.matmul) return;
    if (a.create(&a.handle) != 0) return;
    if (cudaMalloc(&a.workspace, a.workspaceBytes) != cudaSuccess) {
      cudaGetLastError();
      return;
    }
    a.ok = true;
  });
  return a;
}

}  // namespace

bool lt_available() { return api().ok; }

// Column-major view: D (N, T) = op(A) * B with A = W stored (K, N) col-major (transposed), B = x^T
// stored (K, T) col-major; D is y^T, i.e. y (T, N) row-major. No allocation, so graph-capturable.
bool lt_gemm(const void* w, const void* xh, float* y, int N, int K, int T, bool f16, cudaStream_t s) {
  Api& a = api();
  if (!a.ok) return false;
  const int ht = f16 ? kR16F : kR16BF;
  Desc desc = nullptr;
  Layout la = nullptr, lb = nullptr, ld = nullptr;
  bool ok = a.descCreate(&desc, kComputeF32, kR32F) == 0;
  const int32_t opT = kOpT, opN = kOpN;
  ok = ok && a.descSet(desc, kDescTransA, &opT, sizeof opT) == 0 && a.descSet(desc, kDescTransB, &opN, sizeof opN) == 0;
  ok = ok && a.layoutCreate(&la, ht, K, N, K) == 0 && a.layoutCreate(&lb, ht, K, T, K) == 0 && a.layoutCreate(&ld, kR32F, N, T, N) == 0;
  const float alpha = 1.f, beta = 0.f;
  ok = ok && a.matmul(a.handle, desc, &alpha, w, la, xh, lb, &beta, y, ld, y, ld, nullptr, a.workspace, a.workspaceBytes, s) == 0;
  if (la) a.layoutDestroy(la);
  if (lb) a.layoutDestroy(lb);
  if (ld) a.layoutDestroy(ld);
  if (desc) a.descDestroy(desc);
  return ok;
}

}  // namespace cuda
}  // namespace flotilla
