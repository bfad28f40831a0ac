#include "agent/agent.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <xxhash.h>

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/convert/convert.h"
#include "agent/nbd_view.h"
#include "agent/transfer/copy.h"
#include "agent/transfer/stage.h"
#include "agent/volumes/held_volumes.h"
#include "agent/volumes/loop_devices.h"
#include "agent/volumes/volume_server.h"
#include "common/base/log.h"
#include "common/protocol/credentials.h"
#include "common/protocol/subjects.h"

namespace ferry::agent {
namespace {

const Logger kLog("agent");
namespace fs = std::filesystem;

void set_now(google::protobuf::Timestamp* ts) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  ts->set_seconds(ns / 1000000000);
  ts->set_nanos(static_cast<int>(ns % 1000000000));
}

std::string checkpoint_of(const std::string& volume) { return volume + ".ferry-checkpoint"; }

// Where a volume's stage copies keep what the volume matches (agent/transfer/stage.h).
std::string stage_record(const std::string& volume) { return volume + ".ferry-stage"; }

// A delta task: given ranges (a vSphere precopy), or an imageio backup's dirty extents.
bool is_delta(const ferry::v1::TransferTask& task) {
  return !task.ranges().empty() || (task.has_http() && task.http().dirty_extents());
}

// A delta task gets a checkpoint of its own: every precopy cycle
// reads the same source URL, so a checkpoint left by an interrupted earlier
// cycle must never let a later one skip ranges it has not copied.
// So does a stage copy: each stage writes other blocks of the same volume.
std::string checkpoint_for(const std::string& volume, const ferry::v1::TransferTask& task) {
  if (!is_delta(task) && !task.stage()) return checkpoint_of(volume);
  const std::string& key = task.stage_id().empty() ? task.task_id() : task.stage_id();
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(XXH3_64bits(key.data(), key.size())));
  return checkpoint_of(volume) + "." + hex;
}

// Removes the volume's checkpoints other than `keep` (stale ones of earlier cycles).
void remove_checkpoints(const std::string& volume, const std::string& keep) {
  fs::path dir = fs::path(volume).parent_path();
  std::string prefix = fs::path(checkpoint_of(volume)).filename().string();
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) == 0 && it->path().string() != keep &&
        it->path().string() != keep + ".tmp")
      fs::remove(it->path(), ec);
  }
}

// A failed (or, for kCanceled, canceled) task's result.
void set_failure(ferry::v1::TaskResult& result, const Error& e) {
  result.set_state(e.code == ErrorCode::kCanceled ? ferry::v1::TASK_STATE_CANCELED
                                                  : ferry::v1::TASK_STATE_FAILED);
  result.mutable_failure()->set_code(static_cast<int>(e.code));
  result.mutable_failure()->set_message(e.message);
}

// Keeps a work-queue message ours (in_progress every 10 s) while a long task
// runs without progress callbacks of its own.
class KeepAlive {
 public:
  explicit KeepAlive(std::shared_ptr<bus::JsMessage> msg)
      : msg_(std::move(msg)), thread_([this] {
          while (!done_) {
            for (int i = 0; i < 100 && !done_; i++)
              std::this_thread::sleep_for(std::chrono::milliseconds(100));
            if (!done_) (void)msg_->in_progress();
          }
        }) {}
  ~KeepAlive() {
    done_ = true;
    thread_.join();
  }

 private:
  std::shared_ptr<bus::JsMessage> msg_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace

Agent::Agent(AgentOptions opts) : opts_(std::move(opts)) {
  if (opts_.state_dir.empty() && !opts_.volume_roots.empty())
    opts_.state_dir = opts_.volume_roots.begin()->second + "/.ferry-agent";
  if (opts_.node_bandwidth) {
    const double rate = static_cast<double>(opts_.node_bandwidth);
    node_bucket_ =
        std::make_unique<transfer::TokenBucket>(rate, std::max(rate / 10, 4.0 * (1 << 20)));
  }
}

Agent::~Agent() {
  stop();
  for (auto& [id, t] : workers_)
    if (t.joinable()) t.join();
}

void Agent::join_finished() {
  std::vector<uint64_t> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(finished_);
  }
  for (uint64_t id : done) {
    auto it = workers_.find(id);
    if (it == workers_.end()) continue;
    it->second.join();
    workers_.erase(it);
  }
}

void Agent::stop() {
  stopping_ = true;
  cv_.notify_all();
}

Result<std::string> Agent::resolve_target(const ferry::v1::TargetVolume& t) const {
  auto it = opts_.volume_roots.find(t.storage_class());
  if (it == opts_.volume_roots.end())
    return Error(ErrorCode::kInvalidArgument, "node " + opts_.node +
                                                  " has no volume root for storage class \"" +
                                                  t.storage_class() + "\"");
  fs::path root = fs::weakly_canonical(it->second);
  fs::path p = fs::weakly_canonical(root / t.path());
  auto rel = p.lexically_relative(root);
  if (t.path().empty() || rel.empty() || rel.native().rfind("..", 0) == 0)
    return Error(ErrorCode::kInvalidArgument,
                 "target path \"" + t.path() + "\" escapes the volume root");
  return p.string();
}

void Agent::remove_volume(const std::string& path, const ferry::v1::TargetVolume& t) {
  std::error_code ec;
  if (t.block()) {
    Status s = volumes::detach_loop(path);
    if (!s.ok()) kLog.warn("block volume not removed", {{"error", s.error().message}});
  } else {
    fs::remove(path, ec);
  }
  remove_checkpoints(path, "");
  fs::remove(stage_record(path) + ".digests", ec);
  fs::remove(stage_record(path) + ".pending", ec);
  if (pvs_ && t.has_claim()) {
    fs::remove(fs::path(path).parent_path(), ec);  // the claim's directory, if now empty
    Status s = pvs_->remove(t);
    if (!s.ok()) kLog.warn("PersistentVolume not removed", {{"error", s.error().message}});
  }
}

Status Agent::run() {
  if (opts_.kubernetes) {
    auto cfg = kube::load_config(opts_.kubeconfig);
    if (!cfg.ok()) return cfg.error();
    pvs_ = std::make_unique<volumes::PersistentVolumes>(std::make_shared<kube::Client>(*cfg),
                                                        opts_.node);
  }
  started_at_ = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  for (const auto& [sc, dir] : opts_.volume_roots) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Error(ErrorCode::kIo, "volume root " + dir + ": " + ec.message());
  }
  {
    std::error_code ec;
    fs::create_directories(opts_.state_dir + "/results", ec);
    if (ec) return Error(ErrorCode::kIo, "state dir " + opts_.state_dir + ": " + ec.message());
    // Keys and serve directories of tasks an earlier agent ran: no task runs
    // yet, and a redelivered one gets its key with its claim again.
    fs::remove_all(opts_.state_dir + "/keys", ec);
    fs::remove_all(opts_.state_dir + "/serve", ec);
  }
  auto bus = bus::CnatsBus::connect(opts_.nats);
  if (!bus.ok()) return bus.error();
  bus_ = std::move(*bus);
  // The coordinator creates the streams; an agent may lack the right to (NATS
  // authorization), so it waits for them.
  for (const char* stream :
       {subjects::kTasksStream, subjects::kResultsStream, subjects::kCancelsStream}) {
    bool logged = false;
    while (!stopping_) {
      auto e = bus_->stream_exists(stream);
      if (e.ok() && *e) break;
      if (!logged) {
        kLog.info("waiting for the coordinator to create stream " + std::string(stream),
                  {{"detail", e.ok() ? "not found" : e.error().message}});
        logged = true;
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
  if (stopping_) return {};
  auto pc = bus_->pull_consumer(subjects::kTasksStream, subjects::task(opts_.node),
                                subjects::task_consumer(opts_.node), std::chrono::seconds(30));
  if (!pc.ok()) return pc.error();
  tasks_ = std::move(*pc);
  auto cc = bus_->pull_consumer(subjects::kCancelsStream, subjects::cancel(opts_.node),
                                subjects::task_consumer(opts_.node), std::chrono::seconds(30));
  if (!cc.ok()) return cc.error();
  cancels_ = std::move(*cc);
  drain_spool();
  if (!opts_.metrics_address.empty()) {
    auto ep = metrics::HttpEndpoint::start(
        opts_.metrics_address, metrics_.registry(),
        [this] { return ready_.load() && bus_->connected(); }, opts_.metrics_port_file);
    if (!ep.ok()) return ep.error();
    http_ = std::move(*ep);
  }
  ready_ = true;
  kLog.info("agent ready", {{"node", opts_.node},
                            {"nats", opts_.nats.url},
                            {"metrics_port", http_ ? std::to_string(http_->port()) : ""}});
  std::thread hb([this] { heartbeat_loop(); });
  std::thread cancels([this] { cancel_loop(); });
  fetch_loop();
  hb.join();
  cancels.join();
  // Graceful stop: running copies are canceled; their checkpoints keep what is
  // durable and the unacked tasks are redelivered to this node's next agent.
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, r] : running_) r->cancel = true;
  }
  for (auto& [id, t] : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
  return {};
}

void Agent::heartbeat_loop() {
  while (!stopping_) {
    ferry::v1::AgentHeartbeat hb;
    hb.set_node(opts_.node);
    for (const auto& [sc, dir] : opts_.volume_roots) {
      auto* r = hb.add_volume_roots();
      r->set_storage_class(sc);
      r->set_path(dir);
      struct statvfs st {};
      if (statvfs(dir.c_str(), &st) == 0) {
        r->set_capacity_bytes(static_cast<uint64_t>(st.f_blocks) * st.f_frsize);
        r->set_free_bytes(static_cast<uint64_t>(st.f_bavail) * st.f_frsize);
      }
      // Local mode: what it holds (cluster mode: its PersistentVolumes say
      // it). 4096 volumes in all keep a heartbeat near 250 KiB.
      if (!pvs_) {
        auto held = held_volumes(dir, 4096 / opts_.volume_roots.size());
        for (const auto& v : held.volumes) {
          auto* h = r->add_volumes();
          h->set_path(v.path);
          h->set_size_bytes(v.size_bytes);
          h->set_block(v.block);
        }
        r->set_volumes_truncated(held.truncated);
      }
    }
    for (const auto& [name, addr] : opts_.networks) {
      auto* n = hb.add_networks();
      n->set_name(name);
      n->set_address(addr);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      hb.set_tasks_running(static_cast<uint32_t>(running_.size()));
    }
    hb.set_max_tasks(static_cast<uint32_t>(opts_.max_tasks));
    hb.set_version("0.1.0");
    set_now(hb.mutable_sent_at());
    hb.mutable_started_at()->set_seconds(started_at_);
    (void)bus_->publish(subjects::heartbeat(opts_.node), hb.SerializeAsString());
    // Short slices: a signal handler can only set stopping_, it cannot notify cv_.
    std::unique_lock<std::mutex> lock(mu_);
    for (int i = 0; i < subjects::kHeartbeatSeconds * 5 && !stopping_; i++)
      cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stopping_.load(); });
  }
}

void Agent::fetch_loop() {
  while (!stopping_) {
    join_finished();  // threads of tasks that ended
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Timed: SIGTERM only sets stopping_ (no notify) and must not wait for a free slot.
      // A volume served to another node waits on that node's copy: it takes
      // no slot, or two nodes serving each other could hold every slot.
      while (!stopping_ && static_cast<int>(running_.size() - serving_) >= opts_.max_tasks)
        cv_.wait_for(lock, std::chrono::milliseconds(200));
      if (stopping_) break;
    }
    auto msgs = tasks_->fetch(1, std::chrono::milliseconds(500));
    if (!msgs.ok()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    for (auto& m : *msgs) {
      auto msg = std::make_shared<bus::JsMessage>(std::move(m));
      ferry::v1::AgentTask any;
      if (!any.ParseFromString(msg->data()) ||
          any.kind_case() == ferry::v1::AgentTask::KIND_NOT_SET) {
        kLog.error("dropping malformed task", {{"subject", msg->subject()}});
        (void)msg->ack();
        continue;
      }
      struct Ids {
        std::string task_id;
        ferry::v1::TargetVolume first_volume;
      } ids;
      if (any.has_transfer()) {
        ids.task_id = any.transfer().task_id();
        ids.first_volume = any.transfer().target();
      } else if (any.has_convert()) {
        ids.task_id = any.convert().task_id();
        if (any.convert().volumes_size()) ids.first_volume = any.convert().volumes(0);
      } else if (any.has_serve()) {
        ids.task_id = any.serve().task_id();
      } else {
        ids.task_id = any.inspect().task_id();
      }
      // Finished before a restart, but its result never reached JetStream.
      if (fs::exists(spool_path(ids.task_id))) {
        drain_spool();
        if (fs::exists(spool_path(ids.task_id)))
          (void)msg->nak(std::chrono::seconds(2));
        else
          (void)msg->ack();
        continue;
      }
      // A second message of a task this agent runs now (the coordinator stored
      // it again after a restart): the running copy answers for both.
      bool duplicate;
      {
        std::lock_guard<std::mutex> lock(mu_);
        duplicate = running_.count(ids.task_id) > 0;
      }
      if (duplicate) {
        kLog.info("task already running here; duplicate message dropped", {{"task", ids.task_id}});
        (void)msg->ack();
        continue;
      }
      // Still wanted? The coordinator may have canceled it while it was queued.
      ferry::v1::ClaimRequest creq;
      creq.set_task_id(ids.task_id);
      creq.set_node(opts_.node);
      creq.set_needs_credentials(protocol::reads_http(any));
      {
        std::lock_guard<std::mutex> lock(mu_);
        creq.set_credentials_refused(refused_.erase(ids.task_id) > 0);
      }
      auto rep = bus_->request(subjects::claim(opts_.node), creq.SerializeAsString(),
                               std::chrono::seconds(5));
      if (!rep.ok()) {
        kLog.warn("coordinator unavailable; task postponed",
                  {{"task", ids.task_id}, {"error", rep.error().message}});
        (void)msg->nak(std::chrono::seconds(2));
        continue;
      }
      ferry::v1::ClaimReply cr;
      cr.ParseFromString(*rep);
      if (!cr.proceed() && cr.later()) {
        kLog.info("task not handed over yet; asked again later",
                  {{"task", ids.task_id}, {"reason", cr.reason()}});
        (void)msg->nak(std::chrono::seconds(2));
        continue;
      }
      if (!cr.proceed()) {
        kLog.info("task no longer wanted", {{"task", ids.task_id}, {"reason", cr.reason()}});
        auto path = resolve_target(ids.first_volume);
        if (any.has_transfer() && path.ok() && cr.reason().find("Canceled") != std::string::npos)
          remove_volume(*path, ids.first_volume);
        (void)msg->ack();
        continue;
      }
      // The source's credential comes with the claim, never with the stored task.
      if (cr.source_headers_size() > 0)
        protocol::put_source_headers(any, {cr.source_headers().begin(), cr.source_headers().end()});
      if (!cr.source_url().empty()) protocol::put_source_url(any, cr.source_url());
      // So is a served volume's pre-shared key: into a file of this agent's
      // only (nbdkit and the copy engine read files), removed with the task.
      if (!cr.tls_psk().empty()) {
        Status k = write_key(ids.task_id, cr.tls_psk());
        if (!k.ok()) {
          kLog.error("task postponed: its key could not be written",
                     {{"task", ids.task_id}, {"error", k.error().message}});
          (void)msg->nak(std::chrono::seconds(2));
          continue;
        }
      }
      auto running = std::make_shared<Running>();
      running->serve = any.has_serve();
      {
        std::lock_guard<std::mutex> lock(mu_);
        running_[ids.task_id] = running;
        if (running->serve) serving_++;
      }
      uint64_t worker = next_worker_++;
      if (any.has_transfer())
        workers_.emplace(worker, std::thread([this, msg, t = any.transfer(), worker] {
                           run_task(msg, t, worker);
                         }));
      else if (any.has_convert())
        workers_.emplace(worker, std::thread([this, msg, t = any.convert(), worker] {
                           run_convert(msg, t, worker);
                         }));
      else if (any.has_serve())
        workers_.emplace(worker, std::thread([this, msg, t = any.serve(), worker] {
                           run_serve(msg, t, worker);
                         }));
      else
        workers_.emplace(worker, std::thread([this, msg, t = any.inspect(), worker] {
                           run_inspect(msg, t, worker);
                         }));
    }
  }
}

void Agent::on_cancel(const std::string& data) {
  ferry::v1::CancelTask c;
  if (!c.ParseFromString(data)) return;
  std::unique_lock<std::mutex> lock(mu_);
  auto it = running_.find(c.task_id());
  if (it == running_.end()) {
    lock.unlock();  // removing a volume may call the API server (its PersistentVolume)
    if (c.forget_stage() && c.has_volume()) {
      auto path = resolve_target(c.volume());
      if (path.ok()) {
        std::error_code ec;
        fs::remove(stage_record(*path) + ".digests", ec);
        fs::remove(stage_record(*path) + ".pending", ec);
        kLog.info("stage record forgotten", {{"task", c.task_id()}, {"volume", *path}});
      }
    }
    if (c.delete_volume() && c.has_volume()) {
      auto path = resolve_target(c.volume());
      if (path.ok()) {
        remove_volume(*path, c.volume());
        kLog.info("volume removed", {{"task", c.task_id()}, {"volume", *path}});
      }
    }
    return;
  }
  it->second->delete_volume = c.delete_volume();
  it->second->cancel = true;
  kLog.info("cancel requested", {{"task", c.task_id()}});
}

void Agent::cancel_loop() {
  while (!stopping_) {
    auto msgs = cancels_->fetch(16, std::chrono::milliseconds(500));
    if (!msgs.ok()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    for (auto& m : *msgs) {
      on_cancel(m.data());
      (void)m.ack();
    }
  }
}

bool Agent::publish_result(const ferry::v1::TaskResult& r) {
  // The result must reach the durable stream before the task is acked; until
  // then it waits in the spool, however long NATS is away.
  for (int attempt = 0; !stopping_; attempt++) {
    auto s = bus_->js_publish(subjects::result(opts_.node), r.SerializeAsString(),
                              r.task_id() + ".result." + std::to_string(r.state()));
    if (s.ok()) return true;
    if (attempt % 30 == 0)
      kLog.warn("publishing result failed; retrying (the result is kept in the spool)",
                {{"task", r.task_id()}, {"error", s.error().message}});
    for (int i = 0; i < 10 && !stopping_; i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::string Agent::spool_path(const std::string& task_id) const {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(XXH3_64bits(task_id.data(), task_id.size())));
  return opts_.state_dir + "/results/" + hex + ".result";
}

std::string Agent::key_path(const std::string& task_id) const {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(XXH3_64bits(task_id.data(), task_id.size())));
  return opts_.state_dir + "/keys/" + hex + ".psk";
}

Status Agent::write_key(const std::string& task_id, const std::string& hex_key) const {
  for (char c : hex_key)
    if (!std::isxdigit(static_cast<unsigned char>(c)))
      return Error(ErrorCode::kInvalidArgument, "the claim's TLS key is not hexadecimal");
  std::error_code ec;
  fs::create_directories(opts_.state_dir + "/keys", ec);
  ::chmod((opts_.state_dir + "/keys").c_str(), 0700);
  std::string path = key_path(task_id), tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error(ErrorCode::kIo, "writing " + tmp + ": " + strerror(errno));
  std::string line = std::string(protocol::kServeTlsUser) + ":" + hex_key + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0)
    return Error(ErrorCode::kIo, "writing " + path + ": " + strerror(errno));
  return {};
}

bool Agent::within_volume_roots(const std::string& path) const {
  fs::path p = fs::weakly_canonical(path);
  for (const auto& [cls, root] : opts_.volume_roots) {
    auto rel = p.lexically_relative(fs::weakly_canonical(root));
    if (!rel.empty() && rel.native().rfind("..", 0) != 0 && rel != ".") return true;
  }
  return false;
}

Status Agent::spool(const ferry::v1::TaskResult& r) const {
  std::string path = spool_path(r.task_id()), tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << r.SerializeAsString();
    out.flush();
    if (!out) return Error(ErrorCode::kIo, "writing " + tmp + " failed");
  }
  FILE* f = std::fopen(tmp.c_str(), "rb");  // fsync before the rename makes it visible
  if (f) {
    (void)fsync(fileno(f));
    std::fclose(f);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec)
    return Error(ErrorCode::kIo, "spooling the result of " + r.task_id() + ": " + ec.message());
  return {};
}

void Agent::drain_spool() {
  std::error_code ec;
  for (auto it = fs::directory_iterator(opts_.state_dir + "/results", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    if (it->path().extension() != ".result") continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    ferry::v1::TaskResult r;
    std::error_code rm;
    if (!r.ParseFromString(buf.str()) || r.task_id().empty() ||
        spool_path(r.task_id()) != it->path().string()) {
      kLog.error("spooled result unreadable; removed", {{"file", it->path().string()}});
      fs::remove(it->path(), rm);
      continue;
    }
    if (!publish_result(r)) return;  // stopping
    fs::remove(it->path(), rm);
    kLog.info("spooled result published", {{"task", r.task_id()}});
  }
}

bool Agent::credential_refused(const std::string& task_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (++refusals_[task_id] > kCredentialRefusals) return false;  // then the task fails
  refused_.insert(task_id);
  return true;
}

void Agent::release(const std::shared_ptr<bus::JsMessage>& msg, const std::string& task_id,
                    uint64_t worker) {
  (void)msg->nak(std::chrono::seconds(1));
  std::lock_guard<std::mutex> lock(mu_);
  forget_running(task_id);
  finished_.push_back(worker);
  cv_.notify_all();
}

void Agent::complete(const std::shared_ptr<bus::JsMessage>& msg, ferry::v1::TaskResult& result,
                     uint64_t worker) {
  set_now(result.mutable_finished_at());
  if (!stopping_ || result.state() != ferry::v1::TASK_STATE_CANCELED) {
    auto spooled = spool(result);
    if (!spooled.ok())
      kLog.error("result not spooled; it is lost if this agent stops before publishing it",
                 {{"task", result.task_id()}, {"error", spooled.error().message}});
    bool published;
    {
      KeepAlive keep(msg);  // the task stays ours while NATS is away
      published = publish_result(result);
    }
    if (published) {
      (void)msg->ack();
      std::error_code ec;
      fs::remove(spool_path(result.task_id()), ec);
    } else {
      (void)msg->nak();  // stopping: the next agent of this node publishes the spooled result
    }
  } else {
    (void)msg->nak();  // interrupted by shutdown: redeliver, resume from the checkpoint
  }
  std::error_code kec;
  fs::remove(key_path(result.task_id()), kec);
  std::lock_guard<std::mutex> lock(mu_);
  forget_running(result.task_id());
  refusals_.erase(result.task_id());
  double rate = 0;
  for (const auto& [id, r] : running_) rate += r->rate;
  metrics_.throughput.Set(rate);
  finished_.push_back(worker);
  cv_.notify_all();
}

void Agent::forget_running(const std::string& task_id) {
  auto it = running_.find(task_id);
  if (it == running_.end()) return;
  if (it->second->serve) serving_--;
  running_.erase(it);
}

std::shared_ptr<Agent::Running> Agent::running_entry(const std::string& task_id) {
  std::lock_guard<std::mutex> lock(mu_);
  return running_[task_id];
}

ferry::v1::TaskResult Agent::new_result(const std::string& task_id) const {
  ferry::v1::TaskResult r;
  r.set_task_id(task_id);
  r.set_node(opts_.node);
  return r;
}

void Agent::run_convert(std::shared_ptr<bus::JsMessage> msg, ferry::v1::ConvertTask task,
                        uint64_t worker) {
  std::shared_ptr<Running> running = running_entry(task.task_id());
  ferry::v1::TaskResult result = new_result(task.task_id());
  auto fail = [&](const Error& e) {
    set_failure(result, e);
    kLog.error("conversion failed",
               {{"task", task.task_id()}, {"vm", task.vm()}, {"error", e.message}});
    complete(msg, result, worker);
  };
  convert::ConvertSpec spec;
  spec.name = task.vm();
  for (const auto& v : task.volumes()) {
    auto path = resolve_target(v);
    if (!path.ok()) return fail(path.error());
    spec.disks.push_back({*path, "raw"});
  }
  if (spec.disks.empty())
    return fail(Error(ErrorCode::kInvalidArgument, "conversion task has no volumes"));
  spec.firmware = task.firmware().empty() ? "bios" : task.firmware();
  spec.cpus = task.cpus() ? static_cast<int>(task.cpus()) : 1;
  spec.memory_mb = task.memory_mb() ? static_cast<int>(task.memory_mb()) : 1024;
  for (const auto& m : task.macs()) spec.macs.push_back(m);
  for (const auto& [mac, ip] : task.mac_ips()) spec.mac_ips.emplace_back(mac, ip);
  spec.env = opts_.conversion_env;
  spec.time_limit = std::chrono::seconds(task.time_limit_seconds() ? task.time_limit_seconds()
                                                                   : opts_.conversion_time_limit);
  spec.cancel = &running->cancel;
  // Work files (domain XML, virt-v2v log) live under the volume root, never beside a
  // block-device volume in /dev.
  auto root = opts_.volume_roots.find(task.volumes(0).storage_class());
  spec.work_dir =
      (root == opts_.volume_roots.end() ? fs::temp_directory_path().string() : root->second) +
      "/.ferry-convert/" + task.vm();
  auto last_sent = std::chrono::steady_clock::now() - std::chrono::seconds(5);
  auto last_in_progress = std::chrono::steady_clock::now();
  spec.on_output = [&](const std::string& line) {
    auto now = std::chrono::steady_clock::now();
    if (now - last_sent >= std::chrono::seconds(1)) {
      ferry::v1::TaskProgress tp;
      tp.set_task_id(task.task_id());
      tp.set_node(opts_.node);
      tp.set_message(line.substr(0, 300));
      set_now(tp.mutable_sent_at());
      (void)bus_->publish(subjects::progress(opts_.node), tp.SerializeAsString());
      last_sent = now;
    }
    if (now - last_in_progress > std::chrono::seconds(10)) {
      (void)msg->in_progress();
      last_in_progress = now;
    }
  };
  kLog.info("conversion started", {{"task", task.task_id()}, {"vm", task.vm()}});
  auto report = [&] {
    KeepAlive ka(msg);  // virt-v2v is silent for long stretches
    return convert::convert_in_place(spec);
  }();
  if (!report.ok()) {
    metrics_.tasks
        .Add({{"result", report.error().code == ErrorCode::kCanceled ? "canceled" : "failed"}})
        .Increment();
    return fail(report.error());
  }
  metrics_.conversion_seconds.Observe(report->seconds);
  metrics_.tasks.Add({{"result", "succeeded"}}).Increment();
  result.set_state(ferry::v1::TASK_STATE_SUCCEEDED);
  auto* c = result.mutable_conversion();
  c->set_os_name(report->os_name);
  c->set_os_distro(report->os_distro);
  c->set_os_version(report->os_version);
  c->set_os_product(report->os_product);
  c->set_firmware(report->firmware);
  for (const auto& d : report->drivers_installed) c->add_drivers_installed(d);
  for (const auto& w : report->warnings) c->add_warnings(w);
  c->set_virtio_disk(report->virtio_disk);
  c->set_virtio_net(report->virtio_net);
  c->set_seconds(report->seconds);
  kLog.info("conversion succeeded", {{"task", task.task_id()},
                                     {"vm", task.vm()},
                                     {"os", report->os_product},
                                     {"seconds", std::to_string(report->seconds)}});
  complete(msg, result, worker);
}

void Agent::run_inspect(std::shared_ptr<bus::JsMessage> msg, ferry::v1::InspectTask task,
                        uint64_t worker) {
  std::shared_ptr<Running> running = running_entry(task.task_id());
  ferry::v1::TaskResult result = new_result(task.task_id());
  auto fail = [&](const Error& e) {
    set_failure(result, e);
    kLog.error("inspection failed",
               {{"task", task.task_id()}, {"vm", task.vm()}, {"error", e.message}});
    complete(msg, result, worker);
  };
  // Private scratch: nbdkit sockets, logs and the cookie files (0600).
  std::string tmpl = (fs::temp_directory_path() / "ferry-inspect-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) return fail(Error(ErrorCode::kIo, "cannot create a temp dir"));
  struct Scratch {
    std::string dir;
    ~Scratch() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } scratch{tmpl};
  kLog.info("inspection started", {{"task", task.task_id()}, {"vm", task.vm()}});
  Result<convert::Inspection> found = Error(ErrorCode::kInvalidArgument, "no disks");
  double seconds = 0;
  {
    KeepAlive ka(msg);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::unique_ptr<NbdView>> views;  // stopped before the scratch dir goes
    std::vector<convert::GuestDisk> disks;
    for (int i = 0; i < task.disks_size(); i++) {
      auto v = NbdView::open(task.disks(i), scratch.dir, i);
      if (!v.ok()) return fail(v.error().wrap("preflight inspection of VM " + task.vm()));
      disks.push_back({(*v)->uri(), "raw"});
      views.push_back(std::move(*v));
    }
    if (!disks.empty())
      found = convert::inspect(
          disks, opts_.conversion_env,
          std::chrono::seconds(task.time_limit_seconds() ? task.time_limit_seconds() : 900),
          &running->cancel);
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (!found.ok()) return fail(found.error());
  result.set_state(ferry::v1::TASK_STATE_SUCCEEDED);
  auto* r = result.mutable_inspection();
  r->set_found_os(found->found_os);
  r->set_os_name(found->os_name);
  r->set_os_distro(found->distro);
  r->set_os_version(found->version);
  r->set_os_product(found->product);
  r->set_osinfo(found->osinfo);
  r->set_firmware(found->firmware);
  for (const auto& c : found->concerns) r->add_concerns(c);
  r->set_seconds(seconds);
  kLog.info("inspection done", {{"task", task.task_id()},
                                {"vm", task.vm()},
                                {"found_os", found->found_os ? "true" : "false"},
                                {"os", found->product},
                                {"seconds", std::to_string(seconds)}});
  complete(msg, result, worker);
}

void Agent::run_task(std::shared_ptr<bus::JsMessage> msg, ferry::v1::TransferTask task,
                     uint64_t worker) {
  std::shared_ptr<Running> running = running_entry(task.task_id());
  ferry::v1::TaskResult result = new_result(task.task_id());
  metrics_.in_flight.Increment();
  auto started = std::chrono::steady_clock::now();
  auto finish = [&] {
    metrics_.in_flight.Decrement();
    metrics_.transfer_seconds.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    const char* res = result.state() == ferry::v1::TASK_STATE_SUCCEEDED  ? "succeeded"
                      : result.state() == ferry::v1::TASK_STATE_CANCELED ? "canceled"
                                                                         : "failed";
    metrics_.tasks.Add({{"result", res}}).Increment();
    if (result.state() == ferry::v1::TASK_STATE_FAILED)
      metrics_.errors
          .Add({{"kind", error_code_name(static_cast<ErrorCode>(result.failure().code()))}})
          .Increment();
    complete(msg, result, worker);
  };
  auto fail = [&](const Error& e) {
    result.set_state(ferry::v1::TASK_STATE_FAILED);
    result.mutable_failure()->set_code(static_cast<int>(e.code));
    result.mutable_failure()->set_message(e.message);
    kLog.error(
        "task failed",
        {{"task", task.task_id()}, {"vm", task.vm()}, {"disk", task.disk()}, {"error", e.message}});
    finish();
  };
  auto path = resolve_target(task.target());
  if (!path.ok()) return fail(path.error());
  // One stage copy per volume at a time: a canceled attempt may still be
  // stopping when the next one arrives.
  std::unique_ptr<VolumeHold> hold;
  if (task.stage()) {
    hold = std::make_unique<VolumeHold>(*this, *path);
    if (!hold->wait(running->cancel)) {  // canceled, or the agent stops: not a failure
      result.set_state(ferry::v1::TASK_STATE_CANCELED);
      result.mutable_failure()->set_code(static_cast<int>(ErrorCode::kCanceled));
      result.mutable_failure()->set_message("canceled while another copy held " + *path);
      return finish();
    }
  }
  std::error_code ec;
  fs::create_directories(fs::path(*path).parent_path(), ec);
  if (ec)
    return fail(Error(ErrorCode::kIo,
                      "creating " + fs::path(*path).parent_path().string() + ": " + ec.message()));
  // A stage copy from a volume of this node may leave the size to the source.
  uint64_t size = task.target().size_bytes();
  if (size == 0 && task.stage() && task.has_file()) {
    auto s = volumes::volume_size(task.file().path());
    if (!s.ok()) return fail(s.error());
    size = *s;
  }
  if (task.target().block()) {  // volumeMode Block: the copy writes to a loop device
    Status b = volumes::attach_loop(*path, size);
    if (!b.ok()) return fail(b.error());
  }

  transfer::SourceSpec src;
  switch (task.source_case()) {
    case ferry::v1::TransferTask::kHttp:
      src.uri = task.http().url();
      for (const auto& h : task.http().headers()) src.http_headers.push_back(h);
      src.tls_sha1_thumbprint = task.http().tls_sha1_thumbprint();
      src.insecure_skip_verify = task.http().insecure_skip_verify();
      src.ca_pem = task.http().ca_pem();
      src.identity = task.http().source_id();
      src.imageio = task.http().imageio();
      src.changed_only = task.http().dirty_extents();
      break;
    case ferry::v1::TransferTask::kNbd:
      src.uri = task.nbd().uri();
      if (task.nbd().tls_psk()) {
        src.tls_psk_file = key_path(task.task_id());
        src.tls_username = task.nbd().tls_username();
        if (!fs::exists(src.tls_psk_file))
          return fail(Error(ErrorCode::kFailedPrecondition,
                            "the source needs TLS, and the claim brought no key"));
      }
      break;
    case ferry::v1::TransferTask::kFile:
      src.uri = task.file().path();
      // A stage copy reads another volume of this node: only under a volume root.
      if (task.stage() && !within_volume_roots(src.uri))
        return fail(
            Error(ErrorCode::kInvalidArgument,
                  "source " + src.uri + " is not under a volume root of node " + opts_.node));
      break;
    default:
      return fail(Error(ErrorCode::kInvalidArgument, "task has no source"));
  }
  src.size = size;
  if (!task.stage_id().empty()) src.identity = "stage " + task.stage_id();
  if (!task.transfer_network().empty()) {
    auto it = opts_.networks.find(task.transfer_network());
    if (it == opts_.networks.end())
      return fail(Error(
          ErrorCode::kInvalidArgument,
          "node " + opts_.node + " has no network named \"" + task.transfer_network() + "\""));
    src.bind_address = it->second;
  }
  transfer::CopyOptions co;
  co.connections = task.connections() ? static_cast<int>(task.connections()) : opts_.connections;
  co.bandwidth =
      task.bandwidth_bytes_per_second() ? task.bandwidth_bytes_per_second() : opts_.bandwidth;
  co.shared_bandwidth = node_bucket_.get();
  if (opts_.max_in_flight) co.max_in_flight_bytes = opts_.max_in_flight;
  co.verify = task.verify();
  co.checkpoint_path = checkpoint_for(*path, task);
  remove_checkpoints(*path, co.checkpoint_path);
  for (const auto& r : task.ranges()) co.ranges.push_back({r.offset(), r.length()});
  co.fresh_target = task.fresh_target();
  if (is_delta(task)) {
    struct stat st {};
    bool exists = ::stat(path->c_str(), &st) == 0;
    if (co.fresh_target && exists && S_ISBLK(st.st_mode)) {
      co.ranges.clear();  // truncation cannot empty a block device: copy the whole disk
      src.changed_only = false;
    } else if (!co.fresh_target &&
               (!exists || (S_ISREG(st.st_mode) &&
                            static_cast<uint64_t>(st.st_size) != task.target().size_bytes()))) {
      // A delta only makes sense on top of the earlier copy.
      return fail(Error(
          ErrorCode::kFailedPrecondition,
          "volume " + *path + " is missing or has another size; a delta needs the earlier copy"));
    }
  }
  co.cancel = &running->cancel;
  auto last_in_progress = std::chrono::steady_clock::now();
  prometheus::Counter& transferred = metrics_.transferred(task.plan(), task.vm(), task.disk());
  uint64_t reported = 0;
  co.on_progress = [&](const transfer::Progress& p) {
    if (p.bytes_done > reported) {
      transferred.Increment(static_cast<double>(p.bytes_done - reported));
      reported = p.bytes_done;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      running->rate = p.bytes_per_second;
      double rate = 0;
      for (const auto& [id, r] : running_) rate += r->rate;
      metrics_.throughput.Set(rate);
    }
    ferry::v1::TaskProgress tp;
    tp.set_task_id(task.task_id());
    tp.set_node(opts_.node);
    tp.set_bytes_done(p.bytes_done);
    tp.set_bytes_total(p.bytes_total);
    tp.set_bytes_per_second(p.bytes_per_second);
    set_now(tp.mutable_sent_at());
    (void)bus_->publish(subjects::progress(opts_.node), tp.SerializeAsString());
    auto now = std::chrono::steady_clock::now();
    if (now - last_in_progress > std::chrono::seconds(10)) {
      (void)msg->in_progress();  // keeps the work-queue message ours while we copy
      last_in_progress = now;
    }
  };
  kLog.info(
      "task started",
      {{"task", task.task_id()}, {"vm", task.vm()}, {"disk", task.disk()}, {"target", *path}});
  Result<transfer::CopyStats> stats = Error(ErrorCode::kInternal, "not run");
  transfer::StageStats staged;
  if (task.stage()) {
    auto st = stage(task, src, *path, co);
    if (st.ok()) {
      staged = *st;
      stats = staged.copy;
    } else {
      stats = st.error();
    }
  } else {
    stats = transfer::copy_disk(src, *path, co);
  }
  if (!stats.ok() && stats.error().code == ErrorCode::kPermissionDenied && task.has_http() &&
      credential_refused(task.task_id())) {
    // The session behind the credential ended (logged out, expired): the task
    // goes back to the stream and its next claim gets a fresh credential; the
    // copy resumes from its checkpoint.
    kLog.warn("the source refused the credential; claiming the task again",
              {{"task", task.task_id()}, {"error", stats.error().message}});
    metrics_.in_flight.Decrement();
    return release(msg, task.task_id(), worker);
  }
  if (!stats.ok()) {
    if (stats.error().code == ErrorCode::kCanceled) {
      result.set_state(ferry::v1::TASK_STATE_CANCELED);
      result.mutable_failure()->set_code(static_cast<int>(ErrorCode::kCanceled));
      result.mutable_failure()->set_message("canceled");
      if (running->delete_volume) remove_volume(*path, task.target());
      kLog.info("task canceled", {{"task", task.task_id()},
                                  {"volume_deleted", running->delete_volume ? "true" : "false"}});
      return finish();
    }
    return fail(stats.error());
  }
  metrics_.source_read_bytes.Increment(static_cast<double>(stats->bytes_read));
  result.set_state(ferry::v1::TASK_STATE_SUCCEEDED);
  auto* s = result.mutable_success();
  s->set_bytes_read(stats->bytes_read);
  s->set_bytes_written(stats->bytes_written);
  s->set_bytes_zero(stats->bytes_zero);
  s->set_bytes_resumed(stats->bytes_skipped_resumed);
  s->set_seconds(stats->seconds);
  s->set_digest(stats->digest);
  s->set_volume_path(*path);
  s->set_size_bytes(stats->size);
  if (task.stage()) {
    s->set_digest(staged.digest);
    s->set_blocks(staged.blocks);
    s->set_blocks_changed(staged.blocks_changed);
    s->set_verified(staged.verified);
  }
  // Cluster mode: the volume's directory (Block: its device) becomes a
  // PersistentVolume on this node, pre-bound to the claim the coordinator
  // creates for it.
  if (pvs_ && task.target().has_claim() && !running->delete_volume) {
    Status reg = pvs_->register_volume(
        task.target(), task.target().block() ? *path : fs::path(*path).parent_path().string());
    if (!reg.ok()) return fail(reg.error());
  }
  kLog.info("task succeeded", {{"task", task.task_id()},
                               {"bytes_read", std::to_string(stats->bytes_read)},
                               {"seconds", std::to_string(stats->seconds)}});
  if (running->delete_volume) remove_volume(*path, task.target());  // canceled just as it finished
  finish();
}

bool Agent::VolumeHold::wait(const std::atomic<bool>& cancel) {
  std::unique_lock<std::mutex> lock(agent_.mu_);
  while (agent_.busy_volumes_.count(path_)) {
    if (cancel || agent_.stopping_) return false;
    agent_.cv_.wait_for(lock, std::chrono::milliseconds(100));
  }
  agent_.busy_volumes_.insert(path_);
  held_ = true;
  return true;
}

Agent::VolumeHold::~VolumeHold() {
  if (!held_) return;
  std::lock_guard<std::mutex> lock(agent_.mu_);
  agent_.busy_volumes_.erase(path_);
  agent_.cv_.notify_all();
}

Result<transfer::StageStats> Agent::stage(const ferry::v1::TransferTask& task,
                                          const transfer::SourceSpec& src, const std::string& path,
                                          transfer::CopyOptions co) {
  transfer::BlockHashes hashes;
  if (task.has_nbd()) {
    if (task.nbd().digests_uri().empty())
      return Error(ErrorCode::kInvalidArgument,
                   "a stage copy over NBD needs the served volume's digests (digests_uri)");
    transfer::SourceSpec d = src;
    d.uri = task.nbd().digests_uri();
    auto h = transfer::fetch_block_hashes(d, src.size, stage_record(path) + ".fetch");
    if (!h.ok()) return h.error();
    hashes = std::move(*h);
  } else if (task.has_file()) {
    auto h = transfer::hash_file_blocks(src.uri, src.size, nullptr, co.cancel);
    if (!h.ok()) return h.error().wrap("hashing the source");
    hashes = std::move(*h);
  } else {
    return Error(ErrorCode::kInvalidArgument,
                 "a stage copy reads a volume of a node, served over NBD or a local file");
  }
  co.verify = false;  // stage_copy checks every block against the source's digests
  return transfer::stage_copy(src, hashes, path, stage_record(path), co, task.verify());
}

void Agent::run_serve(std::shared_ptr<bus::JsMessage> msg, ferry::v1::ServeTask task,
                      uint64_t worker) {
  std::shared_ptr<Running> running = running_entry(task.task_id());
  ferry::v1::TaskResult result = new_result(task.task_id());
  auto fail = [&](const Error& e) {
    result.set_state(ferry::v1::TASK_STATE_FAILED);
    result.mutable_failure()->set_code(static_cast<int>(e.code));
    result.mutable_failure()->set_message(e.message);
    kLog.error("serving failed", {{"task", task.task_id()}, {"error", e.message}});
    complete(msg, result, worker);
  };
  auto path = resolve_target(task.volume());
  if (!path.ok()) return fail(path.error());
  std::string address;
  if (task.network().empty()) {
    if (opts_.networks.empty())
      return fail(Error(ErrorCode::kFailedPrecondition,
                        "node " + opts_.node + " has no network to serve volume " + *path + " on"));
    address = opts_.networks.begin()->second;
  } else {
    auto it = opts_.networks.find(task.network());
    if (it == opts_.networks.end())
      return fail(Error(ErrorCode::kInvalidArgument,
                        "node " + opts_.node + " has no network named \"" + task.network() + "\""));
    address = it->second;
  }
  std::string key = key_path(task.task_id());
  if (!fs::exists(key))
    return fail(Error(ErrorCode::kFailedPrecondition,
                      "serving " + *path + " needs a TLS key, and the claim brought none"));
  uint64_t size = task.volume().size_bytes();
  if (size == 0) {
    auto s = volumes::volume_size(*path);
    if (!s.ok()) return fail(s.error());
    size = *s;
  }
  // Beside the key, under the same hashed name.
  std::string work =
      opts_.state_dir + "/serve/" + fs::path(key_path(task.task_id())).stem().string();
  std::unique_ptr<volumes::VolumeServer> server;
  {
    KeepAlive keep(msg);  // hashing a large volume takes a while
    auto started = volumes::VolumeServer::start({.volume = *path,
                                                 .size = size,
                                                 .address = address,
                                                 .psk_file = key,
                                                 .work_dir = work,
                                                 .cancel = &running->cancel});
    if (!started.ok()) return fail(started.error().wrap("volume " + *path));
    server = std::move(*started);
  }
  kLog.info("serving volume",
            {{"task", task.task_id()}, {"volume", *path}, {"uri", server->disk_uri()}});
  const auto limit =
      std::chrono::seconds(task.time_limit_seconds() ? task.time_limit_seconds() : 6 * 3600);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  KeepAlive keep(msg);
  while (!running->cancel && !stopping_) {
    if (!server->alive())
      return fail(Error(ErrorCode::kUnavailable, "nbdkit serving " + *path + " exited"));
    if (std::chrono::steady_clock::now() > deadline) {
      server.reset();
      return fail(Error(ErrorCode::kTimeout, "serving " + *path + " reached its time limit of " +
                                                 std::to_string(limit.count()) + " s"));
    }
    ferry::v1::TaskProgress tp;
    tp.set_task_id(task.task_id());
    tp.set_node(opts_.node);
    tp.set_message("serving " + server->disk_uri());
    tp.mutable_serving()->set_disk_uri(server->disk_uri());
    tp.mutable_serving()->set_digests_uri(server->digests_uri());
    tp.mutable_serving()->set_digest(server->digest());
    tp.mutable_serving()->set_size_bytes(size);
    set_now(tp.mutable_sent_at());
    (void)bus_->publish(subjects::progress(opts_.node), tp.SerializeAsString());
    for (int i = 0; i < 10 && !running->cancel && !stopping_; i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  server.reset();
  if (!running->cancel) {  // the agent stops: the next one serves again
    result.set_state(ferry::v1::TASK_STATE_CANCELED);
    result.mutable_failure()->set_code(static_cast<int>(ErrorCode::kCanceled));
    result.mutable_failure()->set_message("canceled");
    return complete(msg, result, worker);
  }
  kLog.info("stopped serving volume", {{"task", task.task_id()}, {"volume", *path}});
  result.set_state(ferry::v1::TASK_STATE_SUCCEEDED);
  result.mutable_success()->set_volume_path(*path);
  complete(msg, result, worker);
}

}  // namespace ferry::agent
