#pragma once
// Work is spread over cores through an Executor that the program's main() creates;
// core libraries never start threads of their own.

#include <cstddef>
#include <functional>

namespace mamori {

class Executor {
 public:
  virtual ~Executor() = default;
  // Calls task(i) for every i in [0, n), possibly concurrently; returns when all are done.
  // Tasks must not throw.
  virtual void run(size_t n, const std::function<void(size_t)>& task) = 0;
  virtual unsigned concurrency() const = 0;
};

class InlineExecutor final : public Executor {
 public:
  void run(size_t n, const std::function<void(size_t)>& task) override {
    for (size_t i = 0; i < n; ++i) task(i);
  }
  unsigned concurrency() const override { return 1; }
};

// Runs tasks on `threads` threads (started per run; a run lasts seconds, not microseconds).
class ThreadExecutor final : public Executor {
 public:
  explicit ThreadExecutor(unsigned threads) : threads_(threads == 0 ? 1 : threads) {}
  void run(size_t n, const std::function<void(size_t)>& task) override;
  unsigned concurrency() const override { return threads_; }

 private:
  unsigned threads_;
};

}  // namespace mamori
