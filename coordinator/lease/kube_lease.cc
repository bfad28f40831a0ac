#include "coordinator/lease/kube_lease.h"

#include <ctime>

#include "common/base/log.h"

namespace ferry::coordinator::lease {
namespace {

const Logger kLog("lease");
using kube::Json;
// Each call to the API server: well inside the renew deadline, so a server
// that accepts connections but does not answer is noticed in time.
constexpr std::chrono::seconds kCallTimeout{3};

// A Kubernetes MicroTime: RFC 3339 in UTC with microseconds.
std::string micro_time_now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  snprintf(buf + n, sizeof buf - n, ".%06ldZ", ts.tv_nsec / 1000);
  return buf;
}

}  // namespace

KubeLease::KubeLease(std::shared_ptr<kube::Client> client, std::string ns, std::string name,
                     std::string identity, std::chrono::seconds ttl)
    : client_(std::move(client)),
      ns_(std::move(ns)),
      name_(std::move(name)),
      identity_(std::move(identity)),
      ttl_(ttl),
      renew_deadline_(std::chrono::duration_cast<std::chrono::milliseconds>(ttl) * 2 / 3) {}

KubeLease::~KubeLease() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!held_) return;
  // Give it up at once (as client-go's ReleaseOnCancel does): a standby need
  // not wait for it to expire.
  std::string path = kube::path_of("coordination.k8s.io/v1", "leases", ns_, name_);
  auto cur = client_->request("GET", path, nullptr, "application/json", kCallTimeout);
  if (!cur.ok() || !cur->ok() || !cur->body.is_object() || !cur->body.contains("spec") ||
      !cur->body["spec"].is_object() || cur->body["spec"].value("holderIdentity", "") != identity_)
    return;
  Json body = cur->body;
  body["spec"]["holderIdentity"] = "";
  body["spec"]["leaseDurationSeconds"] = 1;
  body["spec"]["renewTime"] = micro_time_now();
  (void)client_->request("PUT", path, &body, "application/json", kCallTimeout);
}

Result<bool> KubeLease::try_hold(std::string* holder) {
  const std::string coll = kube::path_of("coordination.k8s.io/v1", "leases", ns_);
  const std::string path = coll + "/" + name_;
  auto cur = client_->request("GET", path, nullptr, "application/json", kCallTimeout);
  if (!cur.ok()) return cur.error();
  std::string now = micro_time_now();
  if (cur->code == 404) {
    Json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", name_}, {"namespace", ns_}}},
                  {"spec",
                   {{"holderIdentity", identity_},
                    {"leaseDurationSeconds", ttl_.count()},
                    {"acquireTime", now},
                    {"renewTime", now},
                    {"leaseTransitions", 0}}}};
    auto r = client_->request("POST", coll, &lease, "application/json", kCallTimeout);
    if (!r.ok()) return r.error();
    if (r->code == 409) return false;  // another replica created it first
    if (!r->ok())
      return Error(ErrorCode::kUnavailable, "Lease " + ns_ + "/" + name_ + ": " + r->message());
    *holder = identity_;
    return true;
  }
  if (!cur->ok())
    return Error(ErrorCode::kUnavailable, "Lease " + ns_ + "/" + name_ + ": " + cur->message());
  Json lease = cur->body;
  if (!lease.is_object())
    return Error(ErrorCode::kUnavailable, "Lease " + ns_ + "/" + name_ + ": not an object");
  Json& spec = lease["spec"];
  if (!spec.is_object()) spec = Json::object();
  *holder = spec.value("holderIdentity", "");
  std::string record = *holder + "|" + spec.value("renewTime", "");
  auto t = std::chrono::steady_clock::now();
  if (record != seen_record_) {
    seen_record_ = record;
    seen_at_ = t;
  }
  int64_t duration = spec.value("leaseDurationSeconds", int64_t{0});
  bool ours = *holder == identity_;
  bool expired = holder->empty() || t - seen_at_ > std::chrono::seconds(duration);
  if (!ours && !expired) return false;
  if (!ours) {
    spec["acquireTime"] = now;
    spec["leaseTransitions"] = spec.value("leaseTransitions", int64_t{0}) + 1;
  }
  spec["holderIdentity"] = identity_;
  spec["leaseDurationSeconds"] = ttl_.count();
  spec["renewTime"] = now;
  auto r = client_->request("PUT", path, &lease, "application/json",
                            kCallTimeout);  // carries the resourceVersion read
  if (!r.ok()) return r.error();
  if (r->code == 409) return false;  // someone wrote it since: read it again
  if (!r->ok())
    return Error(ErrorCode::kUnavailable, "Lease " + ns_ + "/" + name_ + ": " + r->message());
  *holder = identity_;
  return true;
}

Status KubeLease::acquire(const std::atomic<bool>& stop,
                          const std::function<void(const std::string&)>& waiting) {
  bool told = false;
  while (!stop) {
    std::string holder;
    auto r = try_hold(&holder);
    if (r.ok() && *r) {
      held_ = true;
      kLog.info("lease acquired", {{"identity", identity_}, {"lease", ns_ + "/" + name_}});
      return {};
    }
    if (!r.ok())
      kLog.warn("lease not readable", {{"error", r.error().message}});
    else if (!told && !holder.empty()) {
      waiting(holder);
      told = true;
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(1));
  }
  return Error(ErrorCode::kCanceled, "stopped while waiting for the lease");
}

void KubeLease::keep(std::function<void(const std::string&)> on_lost) {
  on_lost_ = std::move(on_lost);
  thread_ = std::thread([this] { renew_loop(); });
}

void KubeLease::renew_loop() {
  using clock = std::chrono::steady_clock;
  auto renewed = clock::now();
  bool failing = false;
  std::unique_lock<std::mutex> lock(mu_);
  while (!done_) {
    cv_.wait_for(lock, failing ? std::chrono::milliseconds(1000)
                               : std::chrono::duration_cast<std::chrono::milliseconds>(ttl_) / 3);
    if (done_) break;
    lock.unlock();
    std::string holder;
    auto r = try_hold(&holder);
    std::string why;
    if (r.ok() && *r) {
      renewed = clock::now();
      failing = false;
    } else if (r.ok() && holder != identity_ && !holder.empty()) {
      held_ = false;
      why = "the lease is held by " + holder;
    } else {
      failing = true;
      std::string error = r.ok() ? "conflict" : r.error().message;
      kLog.warn("lease not renewed; trying again", {{"error", error}});
      auto waited = clock::now() - renewed;
      if (waited >= renew_deadline_)
        why = "the lease was not renewed for " +
              std::to_string(std::chrono::duration_cast<std::chrono::seconds>(waited).count()) +
              " s (" + error + ")";
    }
    if (!why.empty()) {
      kLog.error("lease lost", {{"identity", identity_}, {"why", why}});
      on_lost_(why);
      return;
    }
    lock.lock();
  }
}

}  // namespace ferry::coordinator::lease
