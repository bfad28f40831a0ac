#include <catch2/catch.hpp>

#include "common/protocol/subjects.h"
#include "coordinator/tasks/task_dispatcher.h"

using ferry::Status;
using ferry::coordinator::tasks::TaskDispatcher;
using ferry::coordinator::tasks::TaskRef;

namespace {
// A stream that answers when the test says so, as JetStream's ack would.
struct FakeStream {
  struct Sent {
    std::string subject, data, msg_id;
    std::function<void(Status)> done;
  };
  std::vector<Sent> sent;
  ferry::coordinator::tasks::PublishFn fn() {
    return [this](const std::string& subject, std::string data, std::string msg_id,
                  std::function<void(Status)> done) {
      sent.push_back({subject, std::move(data), std::move(msg_id), std::move(done)});
    };
  }
};

TaskDispatcher::Transfer transfer(const std::string& id, const std::string& host,
                                  const std::string& node, int* stored) {
  return {.id = id,
          .source_host = host,
          .node = node,
          .wire = "task " + id,
          .msg_id = id + ".0",
          .stored = [stored] { ++*stored; }};
}
const ferry::model::ResourceKey kMig{"Migration", "ns", "m"};
}  // namespace

TEST_CASE("transfers are handed over while slots allow, and hold them until released") {
  FakeStream js;
  int refused = 0, stored = 0;
  TaskDispatcher d(1, js.fn(), [&] { ++refused; });  // one transfer per source host
  d.set_node_limit("n1", 4);
  for (const char* id : {"t1", "t2"}) {
    d.track(id, TaskRef{kMig, "vm1", 1});
    d.enqueue(transfer(id, "esx1", "n1", &stored));
  }
  d.dispatch([](const std::string&) { return true; });
  REQUIRE(js.sent.size() == 1);
  CHECK(js.sent[0].subject == ferry::subjects::task("n1"));
  CHECK(js.sent[0].msg_id == "t1.0");
  CHECK(d.publishing("t1"));
  CHECK(d.waiting() == 1);  // t2 waits for esx1's slot
  js.sent[0].done(Status{});
  CHECK(stored == 1);
  CHECK_FALSE(d.publishing("t1"));
  d.dispatch([](const std::string&) { return true; });
  CHECK(js.sent.size() == 1);  // t1 still holds the slot
  d.release("t1");
  d.release("t1");  // a second release frees nothing more
  CHECK(d.slots().running_on_host("esx1") == 0);
  d.dispatch([](const std::string&) { return true; });
  REQUIRE(js.sent.size() == 2);
  CHECK(js.sent[1].msg_id == "t2.0");
  CHECK(refused == 0);
}

TEST_CASE("a refused transfer frees its slots and waits at the front again") {
  FakeStream js;
  int refused = 0, stored = 0;
  TaskDispatcher d(10, js.fn(), [&] { ++refused; });
  d.set_node_limit("n1", 4);
  d.track("t1", TaskRef{kMig, "vm1", 1});
  d.enqueue(transfer("t1", "esx1", "n1", &stored));
  d.dispatch([](const std::string&) { return true; });
  REQUIRE(js.sent.size() == 1);
  CHECK(d.slots().running_on_node("n1") == 1);
  js.sent[0].done(ferry::Error(ferry::ErrorCode::kUnavailable, "no responders"));
  CHECK(refused == 1);
  CHECK(stored == 0);
  CHECK(d.slots().running_on_node("n1") == 0);
  CHECK(d.waiting() == 1);
  d.dispatch([](const std::string&) { return true; });
  REQUIRE(js.sent.size() == 2);
  CHECK(js.sent[1].data == "task t1");  // the same task, the same dedupe id
  CHECK(js.sent[1].msg_id == "t1.0");
}

TEST_CASE("a refusal answered at once does not loop, and a cancel during the hand-off frees once") {
  int refused = 0, stored = 0, calls = 0;
  TaskDispatcher* self = nullptr;
  TaskDispatcher d(
      10,
      [&](const std::string&, std::string, std::string, std::function<void(Status)> done) {
        ++calls;
        done(ferry::Error(ferry::ErrorCode::kUnavailable, "down"));
      },
      [&] { ++refused; });
  self = &d;
  d.track("t1", TaskRef{kMig, "vm1", 1});
  d.enqueue(transfer("t1", "esx1", "n1", &stored));
  self->dispatch([](const std::string&) { return true; });
  CHECK(calls == 1);
  CHECK(refused == 1);
  CHECK(d.waiting() == 1);
  CHECK(d.holding() == 0);
}

TEST_CASE("unwanted and dropped transfers are never handed over") {
  FakeStream js;
  int stored = 0;
  TaskDispatcher d(10, js.fn(), nullptr);
  d.set_node_limit("n1", 4);
  d.track("a", TaskRef{kMig, "vm1", 1});
  d.track("b", TaskRef{kMig, "vm2", 1});
  d.track("c", TaskRef{kMig, "vm3", 1});
  for (const char* id : {"a", "b", "c"}) d.enqueue(transfer(id, "esx1", "n1", &stored));
  d.drop_vm(kMig, "vm2");
  d.dispatch([](const std::string& id) { return id != "c"; });
  REQUIRE(js.sent.size() == 1);
  CHECK(js.sent[0].msg_id == "a.0");
  CHECK(d.waiting() == 0);
}

TEST_CASE("conversion tasks and cancels go straight to their node's subjects") {
  FakeStream js;
  TaskDispatcher d(10, js.fn(), nullptr);
  Status answer;
  bool answered = false;
  d.publish("n2", "m.vm1.convert.1", "conv", [&](Status s) {
    answered = true;
    answer = s;
  });
  CHECK(d.publishing("m.vm1.convert.1"));
  ferry::v1::CancelTask c;
  c.set_task_id("t9");
  d.cancel("n2", c);
  d.cancel("", c);  // no node: nothing to tell
  REQUIRE(js.sent.size() == 2);
  CHECK(js.sent[0].subject == ferry::subjects::task("n2"));
  CHECK(js.sent[0].msg_id == "m.vm1.convert.1");
  CHECK(js.sent[1].subject == ferry::subjects::cancel("n2"));
  js.sent[0].done(Status{});
  CHECK(answered);
  CHECK(answer.ok());
  CHECK_FALSE(d.publishing("m.vm1.convert.1"));
  js.sent[1].done(ferry::Error(ferry::ErrorCode::kUnavailable, "down"));  // logged only
}
