#include "gemm-bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <vector>

#include "../src/core/thread-pool.h"
#include "../src/cpu/matmul.h"
#include "test-weights.h"

namespace flotilla::test {

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

std::vector<const CpuKernels*> sets() {
  std::vector<const CpuKernels*> s;
#ifdef FLOTILLA_HAVE_AVX2
  if (cpu_runs("avx2")) s.push_back(&avx2_kernels());
#endif
#ifdef FLOTILLA_HAVE_AVX512
  if (cpu_runs("avx512")) s.push_back(&avx512_kernels());
#endif
  return s;
}

struct Stat {
  double best = 1e30, wall = 0, cpu = 0;
};

}  // namespace

void bench_gemm(int threads, int rounds) {
  ThreadPool pool(threads > 0 ? threads : hardware_threads());
  const std::vector<const CpuKernels*> ks = sets();
  struct Shape {
    int rows, cols;
    const char* what;
  };
  const Shape shapes[] = {{2048, 768, "w1/w3 (hidden, dim)"}, {768, 2048, "w2 (dim, hidden)"}};
  std::printf("matmul driver, %d threads, best of %d interleaved rounds; GFLOPS = 2*rows*cols*T / time (weights cycle through 128 MB)\n",
              pool.size(), rounds);
  std::printf("%-6s %-20s %4s", "type", "shape", "T");
  for (const CpuKernels* k : ks) std::printf(" %10s GFLOPS  GB/s", k->name);
  std::printf(" (then the sets that take weights in panels, with panels, on huge pages as the CPU backend puts them)  cores busy\n");
  for (DType type : {DType::F32, DType::Q8_0, DType::Q4_0}) {
    for (const Shape& s : shapes) {
      const size_t bytes = row_bytes(type, s.cols) * s.rows;
      const int copies = int(std::max<size_t>(1, (128u << 20) / bytes));
      std::vector<Weight> ws;
      ws.push_back(random_weight(type, s.rows, s.cols, 17));
      for (int i = 1; i < copies; i++) {  // copies at other addresses: encoding (int4's scale search) is slow
        Weight c;
        c.type = type, c.rows = s.rows, c.cols = s.cols, c.rowBytes = ws[0].rowBytes;
        c.owned = AlignedBuffer(bytes, "bench weights");
        std::memcpy(c.owned.data(), ws[0].data, bytes);
        c.data = c.owned.data();
        ws.push_back(std::move(c));
      }
      // The same weights in the panel layout, for the sets that take it (weights.h), placed as the CPU
      // backend places them: all in one buffer, so on huge pages even when each is under 2 MB.
      std::vector<Weight> panelWs(ws.size());
      std::vector<AlignedBuffer> arenas;
      {
        std::vector<Weight*> ptrs;
        for (size_t i = 0; i < ws.size(); i++) {
          Weight& c = panelWs[i];
          c.type = ws[i].type, c.rows = ws[i].rows, c.cols = ws[i].cols, c.rowBytes = ws[i].rowBytes;
          c.owned = AlignedBuffer(bytes, "bench weights");
          std::memcpy(c.owned.data(), ws[i].data, bytes);
          c.data = c.owned.data();
          ptrs.push_back(&c);
        }
        to_panels(ptrs, pool, arenas);
      }
      std::vector<std::pair<const CpuKernels*, bool>> variants;
      for (const CpuKernels* k : ks) variants.push_back({k, false});
      for (const CpuKernels* k : ks)
        if (k->panels && !panelWs.empty()) variants.push_back({k, true});
      for (int T : {1, 8, 32, 64, 128}) {
        const std::vector<float> x = random_acts(size_t(T) * s.cols, 5);
        std::vector<float> y(size_t(T) * s.rows);
        size_t qbytes = 0;
        for (const CpuKernels* k : ks) qbytes = std::max(qbytes, k->quant_act_bytes(s.cols) * T);
        AlignedBuffer xq(qbytes, "bench activations");
        std::vector<Stat> st(variants.size());
        const int reps = std::max(2, copies * (T == 1 ? 2 : 1) / std::max(1, T / 8));
        for (int round = 0; round < rounds; round++) {
          for (size_t i = 0; i < variants.size(); i++) {
            const double t0 = now(), c0 = cpu_now();
            const std::vector<Weight>& src = variants[i].second ? panelWs : ws;
            for (int r = 0; r < reps; r++) {
              const MatmulOut out{&src[r % copies], y.data()};
              matmul_parallel(pool, *variants[i].first, x.data(), T, s.cols, xq.data(), &out, 1);
            }
            const double dt = (now() - t0) / reps;
            st[i].best = std::min(st[i].best, dt);
            st[i].wall += dt * reps, st[i].cpu += cpu_now() - c0;
          }
        }
        std::printf("%-6s %-20s %4d", dtype_name(type), s.what, T);
        double wall = 0, cpu = 0;
        for (const Stat& x : st) {
          std::printf(" %17.1f %5.1f", 2.0 * s.rows * s.cols * T / x.best / 1e9, bytes / x.best / 1e9);
          wall += x.wall, cpu += x.cpu;
        }
        std::printf("  %.2f\n", cpu / wall);
      }
    }
  }
}

void bench_layer_gemm(int threads, int rounds) {
  ThreadPool pool(threads > 0 ? threads : hardware_threads());
  const CpuKernels* kern = nullptr;
  for (const CpuKernels* k : sets())
    if (k->panels) kern = k;
  if (!kern) {
    std::printf("SKIP: no kernel set here takes F32 panels\n");
    return;
  }
  // One Llama-110M layer's matmuls as the CPU backend issues them (outputs fused per call), f32 panels.
  struct Call {
    const char* what;
    int K;
    std::vector<int> rows;
  };
  const Call calls[] = {{"wq|wk|wv", 768, {768, 768, 768}}, {"wo", 768, {768}}, {"w1|w3", 768, {2048, 2048}}, {"w2", 2048, {768}}};
  // Enough copies of the layer that the weights come from memory, as in a 12-layer step.
  constexpr int kCopies = 4;
  std::vector<std::vector<std::vector<Weight>>> ws(kCopies);  // [copy][call][out]
  std::vector<AlignedBuffer> arenas;
  std::vector<Weight*> ptrs;
  for (int c = 0; c < kCopies; c++) {
    ws[c].resize(std::size(calls));
    for (size_t i = 0; i < std::size(calls); i++)
      for (int rows : calls[i].rows) ws[c][i].push_back(random_weight(DType::F32, rows, calls[i].K, 17 + c));
    for (auto& call : ws[c])
      for (Weight& w : call) ptrs.push_back(&w);
  }
  to_panels(ptrs, pool, arenas);
  std::printf("%s f32 panels, one 110M layer's matmuls (outputs fused as the backend calls them), %d threads, best of %d rounds: GFLOPS\n",
              kern->name, pool.size(), rounds);
  std::printf("%5s", "T");
  for (const Call& c : calls) std::printf(" %10s", c.what);
  std::printf(" %10s\n", "layer");
  for (int T : {8, 32, 64, 104, 156, 256}) {
    std::vector<float> x = random_acts(size_t(T) * 2048, 5);
    std::vector<float> y(size_t(T) * 2048 * 3);
    std::vector<double> best(std::size(calls), 1e30);
    double bestLayer = 1e30;
    for (int round = 0; round < rounds; round++) {
      double layer = 0;
      for (int c = 0; c < kCopies; c++) {
        for (size_t i = 0; i < std::size(calls); i++) {
          MatmulOut outs[3];
          for (size_t o = 0; o < calls[i].rows.size(); o++) outs[o] = {&ws[c][i][o], y.data() + o * size_t(T) * 2048};
          const double t0 = now();
          matmul_parallel(pool, *kern, x.data(), T, calls[i].K, nullptr, outs, int(calls[i].rows.size()));
          const double dt = now() - t0;
          best[i] = std::min(best[i], dt);
          layer += dt;
        }
      }
      bestLayer = std::min(bestLayer, layer / kCopies);
    }
    double flops = 0;
    std::printf("%5d", T);
    for (size_t i = 0; i < std::size(calls); i++) {
      double f = 0;
      for (int rows : calls[i].rows) f += 2.0 * rows * calls[i].K * T;
      flops += f;
      std::printf(" %10.1f", f / best[i] / 1e9);
    }
    std::printf(" %10.1f\n", flops / bestLayer / 1e9);
  }
}

}  // namespace flotilla::test
