#include "common/protocol/credentials.h"

#include <functional>

namespace ferry::protocol {
namespace {

void each_http(ferry::v1::AgentTask& task, const std::function<void(ferry::v1::HttpSource&)>& fn) {
  if (task.has_transfer() && task.transfer().has_http())
    fn(*task.mutable_transfer()->mutable_http());
  if (task.has_inspect())
    for (auto& d : *task.mutable_inspect()->mutable_disks())
      if (d.has_http()) fn(*d.mutable_http());
}

}  // namespace

std::vector<std::string> take_source_headers(ferry::v1::AgentTask& task) {
  std::vector<std::string> out;
  each_http(task, [&](ferry::v1::HttpSource& h) {
    if (out.empty()) out.assign(h.headers().begin(), h.headers().end());
    h.clear_headers();
  });
  return out;
}

void put_source_headers(ferry::v1::AgentTask& task, const std::vector<std::string>& headers) {
  each_http(task, [&](ferry::v1::HttpSource& h) {
    h.clear_headers();
    for (const auto& x : headers) h.add_headers(x);
  });
}

void put_source_url(ferry::v1::AgentTask& task, const std::string& url) {
  each_http(task, [&](ferry::v1::HttpSource& h) { h.set_url(url); });
}

bool reads_http(const ferry::v1::AgentTask& task) {
  if (task.has_transfer()) return task.transfer().has_http();
  if (task.has_inspect())
    for (const auto& d : task.inspect().disks())
      if (d.has_http()) return true;
  return false;
}

}  // namespace ferry::protocol
