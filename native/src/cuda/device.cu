// Finding a usable device, and measuring its copy bandwidth (the bound benchmarks compare against).
#include <cstdlib>
#include <string>

#include "cuda-api.h"
#include "kernels.cuh"

namespace flotilla {

namespace {

std::string version(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

}  // namespace

std::string cuda_unavailable_reason() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  int driver = 0;
  cudaDriverGetVersion(&driver);
  if (e == cudaErrorInsufficientDriver || e == cudaErrorCompatNotSupportedOnDevice) {
    cudaGetLastError();
    return driver == 0 ? std::string("no NVIDIA driver was found (libcuda could not be loaded): no CUDA device is usable")
                       : "the NVIDIA driver supports CUDA " + version(driver) + " but this addon was built with CUDA " +
                             version(CUDART_VERSION) + "; update the driver";
  }
  if (e == cudaErrorNoDevice || (e == cudaSuccess && n == 0)) {
    cudaGetLastError();
    return "no CUDA device is visible (cudaGetDeviceCount found none)";
  }
  if (e != cudaSuccess) {
    cudaGetLastError();
    return std::string("CUDA cannot start: ") + cudaGetErrorString(e);
  }
  const char* pick = std::getenv("FLOTILLA_CUDA_DEVICE");
  const int dev = pick ? std::atoi(pick) : 0;
  if (dev < 0 || dev >= n) return "FLOTILLA_CUDA_DEVICE=" + std::string(pick) + " but " + std::to_string(n) + " device(s) are visible";
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, dev) != cudaSuccess) {
    cudaGetLastError();
    return "cannot read the properties of CUDA device " + std::to_string(dev);
  }
  if (p.major < 8)
    return "CUDA device " + std::to_string(dev) + " (" + p.name + ") has compute capability " + std::to_string(p.major) + "." +
           std::to_string(p.minor) + "; the CUDA backend needs 8.0 or newer (Ampere, Ada, Hopper)";
  return "";
}

double cuda_copy_bandwidth(size_t bytes) {
  const std::string why = cuda_unavailable_reason();
  if (!why.empty()) fail("E_DEVICE", why);
  const char* pick = std::getenv("FLOTILLA_CUDA_DEVICE");
  FL_CUDA(cudaSetDevice(pick ? std::atoi(pick) : 0));
  void *a = nullptr, *b = nullptr;
  FL_CUDA(cudaMalloc(&a, bytes));
  if (cudaMalloc(&b, bytes) != cudaSuccess) {
    cudaFree(a);
    cuda::throw_cuda(cudaErrorMemoryAllocation, "cudaMalloc (bandwidth buffer)");
  }
  cudaEvent_t t0, t1;
  cudaEventCreate(&t0);
  cudaEventCreate(&t1);
  cudaMemset(a, 1, bytes);
  cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);  // warm-up
  float best = 1e30f;
  for (int i = 0; i < 5; i++) {
    cudaEventRecord(t0);
    cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(t1);
    cudaEventSynchronize(t1);
    float ms = 0;
    cudaEventElapsedTime(&ms, t0, t1);
    best = ms < best ? ms : best;
  }
  const cudaError_t e = cudaGetLastError();
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
  cudaFree(a);
  cudaFree(b);
  if (e != cudaSuccess) cuda::throw_cuda(e, "bandwidth measurement");
  return 2.0 * double(bytes) / (double(best) * 1e-3);  // a copy reads and writes every byte
}

}  // namespace flotilla
