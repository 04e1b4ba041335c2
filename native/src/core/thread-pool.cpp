#include "thread-pool.h"

#include <sched.h>

#include <chrono>
#include <climits>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace flotilla {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

constexpr uint64_t kMask20 = (1u << 20) - 1, kGenMask = (1u << 24) - 1;
// Spin budget per wait: the gaps between the matmuls of one decode step are a few microseconds, a
// futex wake-up costs 5-50 us (more in a VM), the gap between engine steps is longer than either.
constexpr int kMaxSpinNs = 60000, kMinSpinNs = 2000;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Spins until ready() or about budgetNs have passed; returns ready(). The budget adapts: halved after a
// wait that ran out (the event was far off, or this thread's partner was not running), doubled back
// after one that did not.
template <class F>
bool spin_until(F&& ready, int* budgetNs) {
  if (ready()) return true;
  const int64_t end = now_ns() + *budgetNs;
  for (;;) {
    for (int i = 0; i < 32; i++) {
      cpu_relax();
      if (ready()) {
        *budgetNs = std::min(kMaxSpinNs, *budgetNs * 2);
        return true;
      }
    }
    if (now_ns() > end) {
      *budgetNs = std::max(kMinSpinNs, *budgetNs / 2);
      return false;
    }
  }
}

// Sleeps while *word == expected (returns at once otherwise, or spuriously).
void futex_wait(std::atomic<uint32_t>& word, uint32_t expected) {
#ifdef __linux__
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
#else
  if (word.load() == expected) std::this_thread::sleep_for(std::chrono::microseconds(50));
#endif
}

void futex_wake(std::atomic<uint32_t>& word, int count) {
#ifdef __linux__
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
#else
  (void)word, (void)count;
#endif
}

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

ThreadPool::ThreadPool(int nThreads) : callerSpinNs_(kMaxSpinNs) {
  if (nThreads < 1) nThreads = 1;
  for (int i = 1; i < nThreads; i++) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  posted_.fetch_add(1);
  futex_wake(posted_, INT_MAX);
  for (auto& t : workers_) t.join();
}

void ThreadPool::work(uint64_t gen, int tid) {
  uint64_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((s >> 40) != gen || (s & kMask20) >= ((s >> 20) & kMask20)) return;
    if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    const Job& job = jobs_[gen & 1];  // stable: the item just claimed keeps this job unfinished
    job.task(job.ctx, static_cast<int>(s & kMask20), tid);
    finished_.fetch_add(1);  // seq_cst, paired with the caller's store to callerAsleep_
    if (callerAsleep_.load()) futex_wake(finished_, 1);
    s = state_.load(std::memory_order_acquire);
  }
}

void ThreadPool::run(int n, Task task, void* ctx) {
  generation_ = (generation_ + 1) & kGenMask;
  jobs_[generation_ & 1] = {task, ctx};
  finished_.store(0, std::memory_order_relaxed);
  state_.store(pack(generation_, static_cast<uint64_t>(n), 0), std::memory_order_release);
  posted_.fetch_add(1);  // seq_cst, paired with a worker's increment of sleepers_
  if (sleepers_.load() > 0) futex_wake(posted_, INT_MAX);
  work(generation_, 0);
  const uint32_t all = static_cast<uint32_t>(n);
  if (spin_until([&] { return finished_.load(std::memory_order_acquire) >= all; }, &callerSpinNs_)) return;
  // the last items are held by threads that are not running: give them this core
  callerAsleep_.store(1);
  for (uint32_t done; (done = finished_.load()) < all;) futex_wait(finished_, done);
  callerAsleep_.store(0, std::memory_order_relaxed);
}

void ThreadPool::worker_loop(int tid) {
  int spinNs = kMaxSpinNs;
  // 0, not posted_'s value now: a job (or the shutdown) posted before this thread ran is still seen
  uint32_t seen = 0;
  for (;;) {
    const int64_t waitFrom = now_ns();
    if (!spin_until([&] { return posted_.load(std::memory_order_acquire) != seen || stop_.load(std::memory_order_relaxed); }, &spinNs)) {
      sleepers_.fetch_add(1);
      while (posted_.load() == seen && !stop_.load()) futex_wait(posted_, seen);
      sleepers_.fetch_sub(1);
      // The job came within the longest spin: the budget had shrunk below the gaps between one step's
      // jobs (each timeout halves it, only a gap shorter than the budget doubles it), so the worker
      // slept through them and joined each job a futex wake-up late. Spin twice this gap next time.
      const int64_t waited = now_ns() - waitFrom;
      if (waited < kMaxSpinNs) spinNs = static_cast<int>(std::max<int64_t>(spinNs, std::min<int64_t>(kMaxSpinNs, 2 * waited)));
    }
    seen = posted_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    work(state_.load(std::memory_order_acquire) >> 40, tid);
  }
}

}  // namespace flotilla
