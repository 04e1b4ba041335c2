#include "device-weights.h"

#include <cstring>

namespace flotilla {
namespace cuda {

void* DeviceArena::alloc(size_t bytes, const char* what) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
  if (e != cudaSuccess) {
    cudaGetLastError();
    size_t freeB = 0, totalB = 0;
    cudaMemGetInfo(&freeB, &totalB);
    const std::string msg = std::string("CUDA: cannot allocate ") + std::to_string(bytes >> 20) + " MiB for " + what + " (" +
                            std::to_string(freeB >> 20) + " of " + std::to_string(totalB >> 20) + " MiB free): " + cudaGetErrorString(e);
    fail(e == cudaErrorMemoryAllocation ? "E_OOM" : "E_DEVICE", msg);
  }
  blocks_.push_back({p, bytes});
  bytes_ += bytes;
  return p;
}

void DeviceArena::free(void* p) {
  for (size_t i = 0; i < blocks_.size(); i++) {
    if (blocks_[i].first != p) continue;
    cudaFree(p);
    bytes_ -= blocks_[i].second;
    blocks_.erase(blocks_.begin() + i);
    return;
  }
}

void DeviceArena::release() {
  for (auto& b : blocks_) cudaFree(b.first);
  blocks_.clear();
  bytes_ = 0;
}

namespace {

float* upload_f32(const Weight& w, DeviceArena& a, cudaStream_t s) {
  void* d = a.alloc(w.bytes(), "weights");
  FL_CUDA(cudaMemcpyAsync(d, w.data, w.bytes(), cudaMemcpyHostToDevice, s));
  return static_cast<float*>(d);
}

// (rows, cols) as stored on the host -> DevWeight; quantized blocks become quants + fp16 scales.
DevWeight upload(const Weight& w, DeviceArena& a, cudaStream_t s) {
  DevWeight d;
  d.rows = w.rows, d.cols = w.cols, d.ld = w.cols;
  switch (w.type) {
    case DType::F32: d.kind = WKind::F32; break;
    case DType::F16: d.kind = WKind::F16; break;
    case DType::BF16: d.kind = WKind::BF16; break;
    case DType::Q8_0: d.kind = WKind::Q8; break;
    case DType::Q4_0: d.kind = WKind::Q4; break;
    case DType::Q4_Z:  // GPTQ/AWQ with zero points: no CUDA kernel yet (symmetric GPTQ arrives as Q4_0/Q8_0)
    case DType::Q8_Z:
      fail("E_DEVICE", "the CUDA backend has no kernel for int4/int8 weights with zero points (asymmetric GPTQ, AWQ): load with device 'cpu'");
  }
  if (!w.inPerm.empty())
    fail("E_DEVICE", "the CUDA backend does not permute activations (GPTQ desc_act): load with device 'cpu'");
  if (!is_quantized(w.type)) {
    void* p = a.alloc(w.bytes(), "weights");
    FL_CUDA(cudaMemcpy(p, w.data, w.bytes(), cudaMemcpyHostToDevice));
    d.data = p;
    return d;
  }
  const int groups = groups_of(w.cols);
  d.ld = groups * kGroupQ;
  const size_t qBytes = w.type == DType::Q8_0 ? size_t(w.rows) * d.ld : size_t(w.rows) * d.ld / 2;
  std::vector<uint8_t> q(qBytes);
  std::vector<uint16_t> sc(size_t(w.rows) * groups);
  for (int r = 0; r < w.rows; r++) {
    for (int g = 0; g < groups; g++) {
      if (w.type == DType::Q8_0) {
        const BlockQ8& b = reinterpret_cast<const BlockQ8*>(w.row(r))[g];
        sc[size_t(r) * groups + g] = b.d;
        std::memcpy(&q[size_t(r) * d.ld + g * kGroupQ], b.qs, kGroupQ);
      } else {
        const BlockQ4& b = reinterpret_cast<const BlockQ4*>(w.row(r))[g];
        sc[size_t(r) * groups + g] = b.d;
        uint8_t nib[kGroupQ];
        for (int j = 0; j < 16; j++) nib[j] = b.qs[j] & 15, nib[j + 16] = b.qs[j] >> 4;
        uint8_t* dst = &q[(size_t(r) * d.ld + g * kGroupQ) / 2];
        for (int j = 0; j < 16; j++) dst[j] = uint8_t(nib[2 * j] | (nib[2 * j + 1] << 4));
      }
    }
  }
  void* qp = a.alloc(q.size(), "weights");
  void* sp = a.alloc(sc.size() * 2, "weight scales");
  FL_CUDA(cudaMemcpy(qp, q.data(), q.size(), cudaMemcpyHostToDevice));
  FL_CUDA(cudaMemcpy(sp, sc.data(), sc.size() * 2, cudaMemcpyHostToDevice));
  d.data = qp;
  d.scales = static_cast<const __half*>(sp);
  return d;
}

}  // namespace

DevModel upload_weights(const ModelWeights& w, DeviceArena& a, cudaStream_t s) {
  const size_t before = a.bytes();
  DevModel m;
  m.tok = upload(w.tokEmbeddings, a, s);
  m.classifier = w.config.tiedEmbeddings ? m.tok : upload(w.output, a, s);
  m.norm = upload_f32(w.norm, a, s);
  for (const LayerWeights& l : w.layers) {
    DevLayer d;
    d.attnNorm = upload_f32(l.attnNorm, a, s);
    d.ffnNorm = upload_f32(l.ffnNorm, a, s);
    d.wq = upload(l.wq, a, s), d.wk = upload(l.wk, a, s), d.wv = upload(l.wv, a, s), d.wo = upload(l.wo, a, s);
    d.w1 = upload(l.w1, a, s), d.w2 = upload(l.w2, a, s), d.w3 = upload(l.w3, a, s);
    m.layers.push_back(d);
  }
  FL_CUDA(cudaStreamSynchronize(s));
  m.bytes = a.bytes() - before;
  return m;
}

}  // namespace cuda
}  // namespace flotilla
