// A persistent pool: the calling thread plus (n - 1) workers. Items are claimed one by one from a
// shared counter, and the caller works too, so a worker that the OS has not scheduled (other
// processes on the cores) delays a job by at most one item — never by its own wake-up. What an item
// computes never depends on which thread runs it.
//
// Waiting (a worker for the next job, the caller for the last items) spins for a short, adaptive
// time and then sleeps on a futex: on an idle machine the gaps between the jobs of one engine step
// are shorter than the spin, so nobody sleeps; when the cores are oversubscribed a spinner would only
// take time from the thread it waits for, so the spin shrinks after each wait that had to sleep, and a
// worker's grows back to twice the wait when a job came within the longest spin (it had slept through
// a gap between one step's jobs and joined the job a futex wake-up late).
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

namespace flotilla {

class ThreadPool {
 public:
  static constexpr int kMaxItems = (1 << 20) - 1;

  explicit ThreadPool(int nThreads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(i, tid) for every i in [0, n) (n <= kMaxItems), tid in [0, size()) naming the thread
  // (for per-thread scratch), and returns when all calls are done. Not reentrant.
  template <class F>
  void parallel_for_tid(int n, F&& fn) {
    if (n <= 0) return;
    if (n == 1 || workers_.empty()) {
      for (int i = 0; i < n; i++) fn(i, 0);
      return;
    }
    using Fn = std::remove_reference_t<F>;
    for (int base = 0; base < n; base += kMaxItems) {
      struct Slice {
        Fn* fn;
        int base;
      } slice{&fn, base};
      run(std::min(kMaxItems, n - base), [](void* c, int i, int tid) {
        auto* sl = static_cast<Slice*>(c);
        (*sl->fn)(sl->base + i, tid);
      }, &slice);
    }
  }
  template <class F>
  void parallel_for(int n, F&& fn) {
    parallel_for_tid(n, [&fn](int i, int) { fn(i); });
  }

 private:
  using Task = void (*)(void* ctx, int i, int tid);
  struct Job {
    Task task;
    void* ctx;
  };
  // state_ packs (generation: 24 bits, n: 20 bits, next item: 20 bits); claiming an item is one CAS
  // that also proves the job is still the current one.
  static uint64_t pack(uint64_t gen, uint64_t n, uint64_t next) { return (gen << 40) | (n << 20) | next; }
  void run(int n, Task task, void* ctx);
  void work(uint64_t gen, int tid);
  void worker_loop(int tid);

  std::vector<std::thread> workers_;
  std::atomic<uint64_t> state_{0};
  std::atomic<uint32_t> posted_{0};         // futex word: bumped for each job (and at shutdown)
  std::atomic<int> sleepers_{0};            // workers asleep on posted_
  std::atomic<uint32_t> finished_{0};       // futex word: items done in the current job
  std::atomic<uint32_t> callerAsleep_{0};   // the caller sleeps on finished_
  std::atomic<bool> stop_{false};
  uint64_t generation_ = 0;  // the caller's count of jobs
  Job jobs_[2] = {};         // by generation parity: a slow worker of the last job never sees this one's
  int callerSpinNs_;
};

int hardware_threads();

}  // namespace flotilla
