// A persistent pool: the calling thread plus (n - 1) workers that spin briefly, then sleep, between
// jobs. parallel_for hands out indices dynamically, so a core stolen by another process slows a step
// less; what each index computes never depends on which thread runs it.
#pragma once
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace flotilla {

class ThreadPool {
 public:
  explicit ThreadPool(int nThreads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(i, tid) for every i in [0, n), tid in [0, size()) naming the thread (for per-thread
  // scratch), and returns when all calls are done. Not reentrant.
  template <class F>
  void parallel_for_tid(int n, F&& fn) {
    if (n <= 0) return;
    if (n == 1 || workers_.empty()) {
      for (int i = 0; i < n; i++) fn(i, 0);
      return;
    }
    using Fn = std::remove_reference_t<F>;
    run(n, [](void* c, int i, int tid) { (*static_cast<Fn*>(c))(i, tid); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }
  template <class F>
  void parallel_for(int n, F&& fn) {
    parallel_for_tid(n, [&fn](int i, int) { fn(i); });
  }

 private:
  using Task = void (*)(void* ctx, int i, int tid);
  void run(int n, Task task, void* ctx);
  void drain(int tid);
  void worker_loop(int tid);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> next_{0};
  std::atomic<int> done_{0};
  std::atomic<bool> stop_{false};
  Task task_ = nullptr;
  void* ctx_ = nullptr;
  int n_ = 0;
};

int hardware_threads();

}  // namespace flotilla
