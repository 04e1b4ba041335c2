#include "pool-checks.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <vector>

#include "../src/core/thread-pool.h"

namespace flotilla::test {

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

bool run_jobs(int threads, int jobs) {
  ThreadPool pool(threads);
  std::vector<std::atomic<int>> hits(64);
  bool ok = true;
  const double t0 = now();
  for (int j = 0; j < jobs; j++) {
    const int n = 1 + (j * 37) % 64;
    for (int i = 0; i < n; i++) hits[i].store(0, std::memory_order_relaxed);
    pool.parallel_for_tid(n, [&](int i, int tid) { hits[i].fetch_add(tid < pool.size() ? 1 : 100, std::memory_order_relaxed); });
    for (int i = 0; i < n; i++) ok &= hits[i].load() == 1;
  }
  const double us = (now() - t0) / jobs * 1e6;
  std::printf("%s thread pool: %d threads on %d cores, %d jobs of 1..64 items, each item once: %.1f us per job\n", ok ? "PASS" : "FAIL",
              threads, hardware_threads(), jobs, us);
  return ok;
}

// A pool destroyed right after it is made (a model load that fails) must not wait for workers that
// have not started yet.
bool create_destroy(int pools) {
  int sum = 0;
  for (int p = 0; p < pools; p++) {
    ThreadPool pool(2 + p % 3);
    if (p % 2) pool.parallel_for(3, [&](int) { __atomic_add_fetch(&sum, 1, __ATOMIC_RELAXED); });
  }
  const bool ok = sum == 3 * (pools / 2);
  std::printf("%s thread pool: %d pools made and destroyed at once (half of them after one job)\n", ok ? "PASS" : "FAIL", pools);
  return ok;
}

}  // namespace

bool check_pool() {
  const int cores = hardware_threads();
  return create_destroy(500) & run_jobs(cores, 20000) & run_jobs(4 * cores, 5000);
}

}  // namespace flotilla::test
