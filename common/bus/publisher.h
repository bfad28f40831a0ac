#pragma once
// JsPublisher: JetStream publishes off the caller's thread. A publish waits for
// the stream's ack (a round trip to the server, seconds when NATS is away), so
// the coordinator's loop thread hands them here instead.
//
// Owns one writer thread. Publishes are sent in the order they were queued;
// each `done` runs on the writer thread (owners post to their loop). A publish
// that fails is not retried here: `done` gets the error and the owner decides.
// The destructor sends what is queued (one attempt each) and joins the thread.
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "common/bus/nats_bus.h"

namespace ferry::bus {

class JsPublisher {
 public:
  // `bus` must outlive the publisher.
  explicit JsPublisher(CnatsBus& bus);
  ~JsPublisher();
  JsPublisher(const JsPublisher&) = delete;
  JsPublisher& operator=(const JsPublisher&) = delete;

  // Any thread. msg_id dedupes within the stream's window (as js_publish).
  void publish(std::string subject, std::string data, std::string msg_id,
               std::function<void(Status)> done = nullptr);
  size_t queued() const;

 private:
  struct Item {
    std::string subject, data, msg_id;
    std::function<void(Status)> done;
  };
  void writer_main();

  CnatsBus& bus_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stop_ = false;
  std::thread writer_;
};

}  // namespace ferry::bus
