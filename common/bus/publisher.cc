#include "common/bus/publisher.h"

namespace ferry::bus {

JsPublisher::JsPublisher(CnatsBus& bus) : bus_(bus), writer_([this] { writer_main(); }) {}

JsPublisher::~JsPublisher() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  writer_.join();
}

void JsPublisher::publish(std::string subject, std::string data, std::string msg_id,
                          std::function<void(Status)> done) {
  {
    std::lock_guard<std::mutex> g(mu_);
    queue_.push_back({std::move(subject), std::move(data), std::move(msg_id), std::move(done)});
  }
  cv_.notify_one();
}

size_t JsPublisher::queued() const {
  std::lock_guard<std::mutex> g(mu_);
  return queue_.size();
}

void JsPublisher::writer_main() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    Item it = std::move(queue_.front());
    queue_.pop_front();
    lk.unlock();
    Status s = bus_.js_publish(it.subject, it.data, it.msg_id);
    if (it.done) it.done(s);
    lk.lock();
  }
}

}  // namespace ferry::bus
