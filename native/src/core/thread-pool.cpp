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
constexpr uint64_t kMask20 = (1u << 20) - 1, kGenMask = (1u << 24) - 1;
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
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::work(uint64_t gen, int tid) {
  uint64_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((s >> 40) != gen || (s & kMask20) >= ((s >> 20) & kMask20)) return;
    if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    const Job& job = jobs_[gen & 1];  // stable: the item just claimed keeps this job unfinished
    job.task(job.ctx, static_cast<int>(s & kMask20), tid);
    finished_.fetch_add(1, std::memory_order_release);
    s = state_.load(std::memory_order_acquire);
  }
}

void ThreadPool::run(int n, Task task, void* ctx) {
  generation_ = (generation_ + 1) & kGenMask;
  jobs_[generation_ & 1] = {task, ctx};
  finished_.store(0, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_.store(pack(generation_, static_cast<uint64_t>(n), 0), std::memory_order_release);
  }
  cv_.notify_all();
  work(generation_, 0);
  for (int spins = 0; finished_.load(std::memory_order_acquire) < n; spins++) {
    if (spins < kSpinIterations) cpu_relax();
    else std::this_thread::yield();
  }
}

void ThreadPool::worker_loop(int tid) {
  uint64_t seen = 0;
  for (;;) {
    auto fresh = [&] { return (state_.load(std::memory_order_acquire) >> 40) != seen || stop_.load(); };
    for (int spins = 0; !fresh() && spins < kSpinIterations; spins++) cpu_relax();
    if (!fresh()) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, fresh);
    }
    if (stop_.load()) return;
    seen = state_.load(std::memory_order_acquire) >> 40;
    work(seen, tid);
  }
}

}  // namespace flotilla
