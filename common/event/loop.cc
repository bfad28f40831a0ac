#include "common/event/loop.h"

#include <atomic>
#include <cstdio>
#include <stdexcept>

namespace ferry::event {
namespace {

std::atomic<uint64_t> g_escaped{0};

// Every callback runs inside this: an exception from domain code must never
// unwind through libuv (a C library) and end the process. It is a bug, so it
// is logged and counted (UvEventLoop::escaped_exceptions()), never silent.
template <typename F>
void guarded(const char* where, F&& fn) noexcept {
  try {
    fn();
  } catch (const std::exception& e) {
    g_escaped++;
    std::fprintf(stderr,
                 "{\"level\":\"error\",\"logger\":\"event\",\"msg\":\"exception escaped a "
                 "%s callback\",\"error\":\"%s\"}\n",
                 where, e.what());
  } catch (...) {
    g_escaped++;
    std::fprintf(stderr,
                 "{\"level\":\"error\",\"logger\":\"event\",\"msg\":\"exception escaped a "
                 "%s callback\"}\n",
                 where);
  }
}

}  // namespace

uint64_t UvEventLoop::escaped_exceptions() { return g_escaped.load(); }

struct UvEventLoop::Work {
  uv_work_t req{};
  UvEventLoop* loop = nullptr;
  std::function<void()> work;
  std::function<void()> done;
};

struct UvEventLoop::Timer {
  uv_timer_t handle{};
  std::function<void()> fn;
  bool once = false;
};

UvEventLoop::UvEventLoop() {
  if (uv_loop_init(&loop_) != 0) throw std::runtime_error("uv_loop_init failed");
  uv_async_init(&loop_, &async_,
                [](uv_async_t* a) noexcept { static_cast<UvEventLoop*>(a->data)->drain(); });
  async_.data = this;
  owner_ = uv_thread_self();
}

UvEventLoop::~UvEventLoop() {
  // The owner's state that pending callbacks capture may be gone already:
  // from here on, finished work and posted functions are dropped, not run.
  destroying_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.clear();
  }
  // Close every handle (timers, async) and let their close callbacks free them.
  uv_walk(
      &loop_,
      [](uv_handle_t* h, void*) noexcept {
        if (uv_is_closing(h)) return;
        if (h->type == UV_TIMER) {
          uv_close(h, [](uv_handle_t* t) noexcept { delete static_cast<Timer*>(t->data); });
        } else {
          uv_close(h, nullptr);
        }
      },
      nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

void UvEventLoop::run() {
  owner_ = uv_thread_self();
  uv_run(&loop_, UV_RUN_DEFAULT);
}

void UvEventLoop::stop() {
  post([this] {
    stopping_ = true;
    uv_stop(&loop_);
  });
}

bool UvEventLoop::on_loop_thread() const {
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&self, &owner_);
}

void UvEventLoop::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(fn));
  }
  uv_async_send(&async_);
}

void UvEventLoop::drain() {
  std::deque<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(queue_);
  }
  for (auto& fn : batch) {
    if (destroying_) return;
    guarded("posted", fn);
  }
}

void UvEventLoop::add_timer(std::chrono::milliseconds delay, std::chrono::milliseconds repeat,
                            std::function<void()> fn) {
  auto* t = new Timer;
  t->fn = std::move(fn);
  t->once = repeat.count() == 0;
  uv_timer_init(&loop_, &t->handle);
  t->handle.data = t;
  uv_timer_start(
      &t->handle,
      [](uv_timer_t* h) noexcept {
        auto* timer = static_cast<Timer*>(h->data);
        guarded("timer", timer->fn);
        if (timer->once) {
          uv_close(reinterpret_cast<uv_handle_t*>(h),
                   [](uv_handle_t* x) noexcept { delete static_cast<Timer*>(x->data); });
        }
      },
      static_cast<uint64_t>(delay.count()), static_cast<uint64_t>(repeat.count()));
}

void UvEventLoop::every(std::chrono::milliseconds interval, std::function<void()> fn) {
  add_timer(interval, interval, std::move(fn));
}

void UvEventLoop::after(std::chrono::milliseconds delay, std::function<void()> fn) {
  add_timer(delay, std::chrono::milliseconds(0), std::move(fn));
}

void UvEventLoop::queue_work(std::function<void()> work, std::function<void()> done) {
  auto* w = new Work;
  w->work = std::move(work);
  w->done = std::move(done);
  w->req.data = w;
  w->loop = this;
  uv_queue_work(
      &loop_, &w->req,
      [](uv_work_t* r) noexcept { guarded("worker", static_cast<Work*>(r->data)->work); },
      [](uv_work_t* r, int) noexcept {
        auto* x = static_cast<Work*>(r->data);
        if (!x->loop->destroying_) guarded("work done", x->done);
        delete x;
      });
}

}  // namespace ferry::event
