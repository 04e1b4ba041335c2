#include "cpu-info.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>

#include "aligned-buffer.h"
#include "thread-pool.h"

namespace flotilla {

CpuFeatures cpu_features() {
  __builtin_cpu_init();
  return {__builtin_cpu_supports("avx2") != 0, __builtin_cpu_supports("fma") != 0, __builtin_cpu_supports("f16c") != 0,
          __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
              __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"),
          hardware_threads()};
}

namespace {
uint64_t sum_words(const uint64_t* p, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i + 4 <= n; i += 4) a += p[i], b += p[i + 1], c += p[i + 2], d += p[i + 3];
  return a + b + c + d;
}
}  // namespace

double measure_read_bandwidth(size_t bytes) {
  bytes = std::max<size_t>(bytes, 1 << 20) / 4096 * 4096;
  // One buffer and one pool for the process, grown on demand: a benchmark probes between its rounds,
  // and a fresh 256 MB of huge pages (and fresh threads) each time leaves the kernel compacting and
  // zeroing memory on our cores for the round that follows.
  static std::mutex mu;
  static AlignedBuffer buf;
  static std::unique_ptr<ThreadPool> probePool;
  std::lock_guard<std::mutex> lock(mu);
  if (buf.size() < bytes) {
    buf = AlignedBuffer(bytes, "the bandwidth probe");
    for (size_t i = 0; i < bytes; i += 64) buf.data()[i] = static_cast<uint8_t>(i);
  }
  if (!probePool) probePool = std::make_unique<ThreadPool>(hardware_threads());
  ThreadPool& pool = *probePool;
  const int parts = pool.size() * 4;
  const size_t words = bytes / 8, per = (words / parts) / 4 * 4;
  std::atomic<uint64_t> sink{0};  // keeps the reads from being optimised away
  double best = 0;
  for (int pass = 0; pass < 5; pass++) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(parts, [&](int i) { sink.fetch_add(sum_words(buf.as<uint64_t>() + i * per, per), std::memory_order_relaxed); });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, double(per) * parts * 8 / s);
  }
  return best;
}

}  // namespace flotilla
