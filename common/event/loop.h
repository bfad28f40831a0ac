#pragma once
// UvEventLoop: the one thread that owns a daemon's domain state.
// Other threads (cnats callbacks, workers) hand work to it with post().
// Blocking work (SOAP calls, curl, process waits) goes to run_blocking(), which
// runs it on libuv's worker pool and delivers the result back on the loop thread.
// Lifecycle: construct, schedule, run() on the owning thread until stop().
#include <uv.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace ferry::event {

class UvEventLoop {
 public:
  UvEventLoop();
  ~UvEventLoop();
  UvEventLoop(const UvEventLoop&) = delete;
  UvEventLoop& operator=(const UvEventLoop&) = delete;

  // Runs until stop(). Call from the owning thread.
  void run();
  // Any thread. The loop finishes what it is doing and run() returns.
  void stop();
  // Any thread: fn runs on the loop thread, in post order.
  void post(std::function<void()> fn);
  // Loop thread: fn runs every interval (first after one interval) until the loop stops.
  void every(std::chrono::milliseconds interval, std::function<void()> fn);
  // Loop thread: fn runs once after delay.
  void after(std::chrono::milliseconds delay, std::function<void()> fn);
  // Loop thread: work runs on a worker thread; done(result) runs on the loop thread.
  template <typename T>
  void run_blocking(std::function<T()> work, std::function<void(T)> done) {
    auto result = std::make_shared<std::unique_ptr<T>>();
    queue_work([work = std::move(work), result] { *result = std::make_unique<T>(work()); },
               [done = std::move(done), result] {
                 if (*result) done(std::move(**result));  // null: work threw (logged)
               });
  }
  bool on_loop_thread() const;
  // Exceptions caught at a callback boundary in this process (each one a bug, logged).
  static uint64_t escaped_exceptions();

 private:
  struct Work;
  struct Timer;
  void queue_work(std::function<void()> work, std::function<void()> done);
  void drain();
  void add_timer(std::chrono::milliseconds delay, std::chrono::milliseconds repeat,
                 std::function<void()> fn);

  uv_loop_t loop_{};
  uv_async_t async_{};
  std::mutex mu_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  bool destroying_ = false;  // loop thread: set by the destructor
  uv_thread_t owner_{};
};

}  // namespace ferry::event
