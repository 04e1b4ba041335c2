#include "thread-pool.h"

#include <sched.h>

namespace flotilla {

namespace {
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
constexpr int kSpinIterations = 1 << 14;
}  // namespace

int hardware_threads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

ThreadPool::ThreadPool(int nThreads) {
  if (nThreads < 1) nThreads = 1;
  for (int i = 1; i < nThreads; i++) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::drain(int tid) {
  for (;;) {
    int i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= n_) return;
    task_(ctx_, i, tid);
  }
}

void ThreadPool::run(int n, Task task, void* ctx) {
  task_ = task;
  ctx_ = ctx;
  n_ = n;
  next_.store(0, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  drain(0);
  const int workers = static_cast<int>(workers_.size());
  for (int spins = 0; done_.load(std::memory_order_acquire) < workers; spins++) {
    if (spins < kSpinIterations) cpu_relax();
    else std::this_thread::yield();
  }
}

void ThreadPool::worker_loop(int tid) {
  uint64_t seen = 0;  // not a load: a job may already have been posted before this thread starts
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spins < kSpinIterations) {
      cpu_relax();
      spins++;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    drain(tid);
    done_.fetch_add(1, std::memory_order_release);
  }
}

}  // namespace flotilla
