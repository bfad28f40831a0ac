#include "coordinator/coordinator.h"

#include <cstdio>
#include <future>

#include "common/protocol/credentials.h"
#include "coordinator/status/conditions.h"
#include "coordinator/status/outcome.h"
#include "coordinator/status/reports.h"
#include "coordinator/status/task_state.h"
#include "coordinator/storage/kube_cluster.h"
#include "coordinator/storage/local_cluster.h"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "common/base/clock.h"
#include "common/base/failpoint.h"
#include "common/base/log.h"
#include "common/model/validate.h"
#include "common/protocol/subjects.h"
#include "coordinator/console/kube_authorizer.h"
#include "coordinator/lease/kube_lease.h"
#include "coordinator/store/kube_state_store.h"
#include "coordinator/store/kv_state_store.h"
#include "coordinator/store/layout.h"
#include "coordinator/target/kubevirt.h"
#include "coordinator/target/vm_sink.h"
#include "coordinator/validation/plan_validation.h"

namespace ferry::coordinator {

using migration::Phase;
using model::Json;
using status::set_task_state;
using status::task_state;
using status::TaskState;

namespace {

const Logger kLog("coordinator");

}  // namespace

Coordinator::Coordinator(CoordinatorOptions opts)
    : opts_(std::move(opts)),
      agents_({.live_seconds = 10, .expiry_seconds = opts_.agent_timeout_seconds}),
      tasks_(
          opts_.per_host_transfers,
          [this](const std::string& subject, std::string data, std::string msg_id,
                 std::function<void(Status)> done) {
            publisher_->publish(
                subject, std::move(data), std::move(msg_id),
                [this, done = std::move(done)](Status s) { loop_.post([done, s] { done(s); }); });
          },
          [this] {  // a refused task: the stream may be back in a moment
            loop_.after(std::chrono::seconds(2), [this] {
              if (runner_) runner_->dispatch();
            });
          }) {}

Coordinator::~Coordinator() {
  stopping_ = true;
  if (console_) console_->stop();
  if (results_thread_.joinable()) results_thread_.join();
  subs_.clear();
}

void Coordinator::stop() {
  stopping_ = true;
  if (console_) console_->stop();
  loop_.stop();
}

Status Coordinator::run() {
  auto bus = bus::CnatsBus::connect(opts_.nats);
  if (!bus.ok()) return bus.error();
  bus_ = std::move(*bus);
  // One active coordinator per NATS (cluster mode: per cluster): a second one
  // waits here, holding nothing.
  std::string identity = opts_.identity;
  if (identity.empty()) {
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    identity = std::string(host) + "/" + std::to_string(getpid()) + "/" +
               std::to_string(static_cast<int64_t>(now_seconds() * 1000));
  }
  std::shared_ptr<kube::Client> kube;
  if (opts_.kubernetes) {
    auto cfg = kube::load_config(opts_.kubeconfig);
    if (!cfg.ok()) return cfg.error();
    kLog.info("cluster mode: resources in the Kubernetes API", {{"server", cfg->server}});
    kube = std::make_shared<kube::Client>(*cfg);
    std::string ns = !opts_.lease_namespace.empty() ? opts_.lease_namespace
                     : !cfg->ns.empty()             ? cfg->ns
                                                    : model::kDefaultNamespace;
    lease_ = std::make_unique<lease::KubeLease>(kube, ns, "ferry-coordinator", identity,
                                                std::chrono::seconds(15));
  } else {
    auto lk = bus_->kv(subjects::kLeaderBucket, true, opts_.js_replicas,
                       std::chrono::seconds(subjects::kLeaderTtlSeconds));
    if (!lk.ok()) return lk.error();
    lease_ = std::make_unique<lease::KvLease>(std::move(*lk), subjects::kLeaderKey, identity,
                                              std::chrono::seconds(subjects::kLeaderTtlSeconds));
  }
  auto held = lease_->acquire(stop_requested_, [](const std::string& holder) {
    kLog.info("another coordinator is active; standing by", {{"holder", holder}});
  });
  if (!held.ok()) return stop_requested_ ? Status{} : held;
  lease_->keep([this](const std::string& why) {
    loop_.post([this, why] {
      lease_lost_ = why;
      stop();
    });
  });
  FERRY_TRY(bus_->ensure_stream(subjects::kTasksStream, {subjects::kTasksStreamSubjects}, true,
                                opts_.js_replicas));
  FERRY_TRY(bus_->ensure_stream(subjects::kResultsStream, {subjects::kResultsStreamSubjects}, true,
                                opts_.js_replicas));
  FERRY_TRY(bus_->ensure_stream(subjects::kCancelsStream, {subjects::kCancelsStreamSubjects}, true,
                                opts_.js_replicas,
                                std::chrono::seconds(subjects::kCancelsMaxAgeSeconds)));
  std::unique_ptr<bus::KvBucket> kv_resources, kv_status, kv_inventory;
  for (auto [name, dst] : {std::pair{subjects::kResourcesBucket, &kv_resources},
                           std::pair{subjects::kStatusBucket, &kv_status},
                           std::pair{subjects::kInventoryBucket, &kv_inventory}}) {
    auto kv = bus_->kv(name, true, opts_.js_replicas);
    if (!kv.ok()) return kv.error();
    *dst = std::move(*kv);
  }
  std::shared_ptr<const store::SecretBox> secrets;
  if (!kube) {  // cluster mode: Secrets stay in the Kubernetes API
    auto box = store::SecretBox::open(opts_.secret_key_file);
    if (!box.ok()) return box.error();
    secrets = std::make_shared<const store::SecretBox>(std::move(*box));
  }
  auto kv_store = std::make_unique<store::KvStateStore>(
      std::move(kv_resources), std::move(kv_status), std::move(kv_inventory), std::move(secrets));
  std::shared_ptr<target::VmSink> vm_sink;  // where migrated VMs go
  if (kube) {
    store_ = std::make_unique<store::KubeStateStore>(kube, std::move(kv_store));
    vm_sink = std::make_shared<target::KubeVmSink>(kube);
    if (!opts_.manifest_dir.empty())
      kLog.info("cluster mode: VirtualMachines go to the API; --manifest-dir is not used");
  } else {
    store_ = std::move(kv_store);
    vm_sink = std::make_shared<target::ManifestDirSink>(opts_.manifest_dir);
  }
  publisher_ = std::make_unique<bus::JsPublisher>(*bus_);
  status_.attach(store_.get());
  // Cluster mode: every hook is a Job (as MTV runs them); local mode:
  // playbooks run here with ansible-playbook.
  auto hooks = std::make_unique<hooks::HookRunner>(hooks::HookRunner::Options{
      .work_root = opts_.hook_dir, .ansible_playbook = opts_.ansible_playbook, .kube = kube});
  runner_ = std::make_unique<runner::MigrationRunner>(
      runner::MigrationRunner::Deps{.host = *this,
                                    .opts = opts_,
                                    .loop = loop_,
                                    .statuses = status_,
                                    .agents = agents_,
                                    .tasks = tasks_,
                                    .metrics = metrics_,
                                    .store = *store_,
                                    .vm_sink = std::move(vm_sink),
                                    .hooks = std::move(hooks)});
  // Storage migration, built before any agent message can arrive and started
  // once ready. Cluster mode: on the Kubernetes API; local mode: on KV
  // ferry-storage, --manifest-dir and the agents' volumes.
  std::shared_ptr<storage::Cluster> storage_cluster;
  if (kube) {
    storage_cluster = std::make_shared<storage::KubeCluster>(kube);
  } else {
    auto kv = bus_->kv(subjects::kStorageBucket, true, opts_.js_replicas);
    if (!kv.ok()) return kv.error();
    local_storage_ = std::make_shared<storage::LocalCluster>(std::move(*kv), opts_.manifest_dir,
                                                             [this] { return storage_nodes(); });
    storage_cluster = local_storage_;
  }
  {
    storage_ = std::make_unique<storage::StorageMigrator>(storage::MigratorDeps{
        .cluster = std::move(storage_cluster),
        .nodes = [this] { return storage_nodes(); },
        .publish_task =
            [this](const std::string& node, const ferry::v1::AgentTask& t,
                   const std::string& msg_id) {
              return bus_->js_publish(subjects::task(node), t.SerializeAsString(), msg_id);
            },
        .cancel_task =
            [this](const std::string& node, const ferry::v1::CancelTask& c) {
              return bus_->js_publish(subjects::cancel(node), c.SerializeAsString());
            }});
  }
  FERRY_TRY(load_state());
  auto rc = bus_->pull_consumer(subjects::kResultsStream, subjects::kResultsStreamSubjects,
                                subjects::kResultsConsumer, std::chrono::seconds(30));
  if (!rc.ok()) return rc.error();
  results_ = std::move(*rc);
  FERRY_TRY(subscribe());
  store_->watch_resources([this](const ResourceKey& k, std::optional<Json> doc) {
    loop_.post([this, k, doc = std::move(doc)] { observe(k, doc); });
  });
  results_thread_ = std::thread([this] { results_thread_main(); });
  // A signal handler only sets stop_requested_; the loop notices here.
  loop_.every(std::chrono::milliseconds(200), [this] {
    if (stop_requested_) stop();
  });
  loop_.every(std::chrono::milliseconds(1000), [this] {
    status_.flush();
    update_gauges();
    runner_->expire_agents();
  });
  // Idle sessions are checked a few times per --session-idle-timeout.
  loop_.every(std::chrono::milliseconds(static_cast<int64_t>(
                  std::clamp(opts_.session_idle_seconds / 4, 0.5, 60.0) * 1000)),
              [this] { trim_sessions(); });
  if (!opts_.metrics_address.empty()) {
    auto ep = metrics::HttpEndpoint::start(
        opts_.metrics_address, metrics_.registry,
        [this] { return ready_.load() && bus_->connected(); }, opts_.metrics_port_file);
    if (!ep.ok()) return ep.error();
    http_ = std::move(*ep);
  }
  if (!opts_.console_token_file.empty()) {
    if (!http_)
      return Error(ErrorCode::kInvalidArgument,
                   "--console-token-file: the console is served on the metrics port; set "
                   "--metrics-address too");
    auto token = console::ConsoleApi::load_or_create_token(opts_.console_token_file);
    if (!token.ok()) return token.error();
    std::string app = opts_.console_dir;
    if (!app.empty() && ::access((app + "/index.html").c_str(), R_OK) != 0)
      return Error(
          ErrorCode::kInvalidArgument,
          "--console-dir " + app + ": holds no index.html (build it: tools/build-console)");
    if (app.empty() && ::access("/usr/share/ferry/console/index.html", R_OK) == 0)
      app = "/usr/share/ferry/console";
    console_ = std::make_unique<console::ConsoleApi>(
        *token,
        [this](const std::string& verb, const std::string& body, std::function<void(Json)> done) {
          loop_.post([this, verb, body, done] {
            serve_api(
                verb, body, [done](const Json& j) { done(j); }, "");
          });
        },
        app,
        // Cluster mode: Kubernetes users with their own tokens, as RBAC allows them.
        kube ? std::make_shared<console::KubeAuthorizer>(kube) : nullptr);
    console_->attach(*http_);
    kLog.info("console API ready",
              {{"port", std::to_string(http_->port())}, {"token_file", opts_.console_token_file}});
    // For the person who started it (the token is in the file, mode 0600, too).
    std::printf("Ferry console API: http://127.0.0.1:%d/api/v1/  token: %s\n", http_->port(),
                token->c_str());
    if (!app.empty())
      std::printf("Ferry console: http://127.0.0.1:%d/console/#token=%s\n", http_->port(),
                  token->c_str());
    std::fflush(stdout);
  }
  loop_.post([this] { ready_ = true; });
  // Each source's inventory is read again every --inventory-refresh seconds,
  // or as often as its inventory's refreshSeconds says (oVirt: a read that
  // finds no new event costs one small request).
  loop_.every(std::chrono::seconds(std::clamp(opts_.inventory_refresh_seconds, 1, 5)),
              [this] { refresh_inventories(); });
  // Resume every migration that was running when the previous coordinator stopped.
  loop_.post([this] { runner_->resume(); });
  if (storage_) storage_->start();
  kLog.info("coordinator ready", {{"nats", opts_.nats.url}});
  loop_.run();
  stopping_ = true;
  if (storage_) storage_->stop();
  runner_->stop_hooks();
  if (results_thread_.joinable()) results_thread_.join();
  if (!lease_lost_.empty())  // another coordinator is active: write nothing more
    return Error(ErrorCode::kFailedPrecondition, "stopped: " + lease_lost_);
  status_.flush();
  return {};
}

Status Coordinator::load_state() {
  // A stored entry that does not parse, or has the wrong shape, is reported,
  // counted and skipped: one bad entry must not stop every later start.
  FERRY_TRY(store_->load_resources(
      [this](const ResourceKey& k, Json doc) { resources_[k] = Resource{std::move(doc)}; },
      [this](const std::string& what) { bad_input("stored", what); }));
  // A stored status of the wrong shape is dropped (and counted), never fatal.
  auto dropped = [this](const ResourceKey& k, const Error& e) {
    bad_input("stored", std::string(subjects::kStatusBucket) + "/" + k.kv_key() + ": " + e.message +
                            "; status dropped");
  };
  FERRY_TRY(store_->load_status(
      [&](const ResourceKey& k, Json st) {
        if (!resources_.count(k)) return;
        auto bad_vm = [&](const std::string& what) {
          bad_input("stored",
                    std::string(subjects::kStatusBucket) + "/" + k.kv_key() + ": " + what);
        };
        if (auto s = status_.load(k, std::move(st), bad_vm); !s.ok()) dropped(k, s.error());
      },
      [this](const std::string& what) { bad_input("stored", what); }));
  FERRY_TRY(store_->load_inventories(
      [this](const ResourceKey& k, Json inv) {
        inventories_[k] = std::make_shared<const Json>(std::move(inv));
      },
      [this](const std::string& what) { bad_input("stored", what); }));
  // Task bookkeeping and slots, from the stored state of running Migrations.
  std::vector<ResourceKey> running;
  for (const auto& [k, st] : status_)
    if (k.kind == "Migration" && st.value("phase", "") == "Running") running.push_back(k);
  for (const auto& k : running) runner_->restore(k);
  kLog.info("state loaded", {{"resources", std::to_string(resources_.size())},
                             {"tasks", std::to_string(tasks_.size())}});
  return {};
}

Status Coordinator::subscribe() {
  auto add = [this](const std::string& subject, std::function<void(bus::Message)> cb) -> Status {
    auto s = bus_->subscribe(subject, std::move(cb));
    if (!s.ok()) return s.error();
    subs_.push_back(std::move(*s));
    return {};
  };
  FERRY_TRY(add(subjects::kHeartbeatAll, [this](bus::Message m) {
    loop_.post([this, m = std::move(m)] { runner_->on_heartbeat(m.subject, m.data); });
  }));
  FERRY_TRY(add(subjects::kProgressAll, [this](bus::Message m) {
    loop_.post([this, m = std::move(m)] {
      if (storage_) {
        ferry::v1::TaskProgress p;
        if (p.ParseFromString(m.data) && storage::StorageMigrator::owns(p.task_id()) &&
            m.subject == subjects::progress(p.node()))
          return storage_->on_progress(p);
      }
      runner_->on_progress(m.subject, m.data);
    });
  }));
  FERRY_TRY(add(subjects::kClaimAll, [this](bus::Message m) {
    loop_.post([this, m = std::move(m)] {
      ferry::v1::ClaimRequest req;
      if (storage_ && req.ParseFromString(m.data) &&
          storage::StorageMigrator::owns(req.task_id()) &&
          m.subject == subjects::claim(req.node())) {
        auto rep = storage_->on_claim(req);
        if (!m.reply.empty()) (void)bus_->respond(m.reply, rep.SerializeAsString());
        return;
      }
      auto rep = runner_->on_claim(m);
      if (!m.reply.empty()) (void)bus_->respond(m.reply, rep.SerializeAsString());
    });
  }));
  FERRY_TRY(add(subjects::kApiAll, [this](bus::Message m) {
    loop_.post([this, m = std::move(m)] {
      std::string reply_to = m.reply;
      serve_api(
          m.subject.substr(m.subject.rfind('.') + 1), m.data,
          [this, reply_to](const Json& j) { send_reply(reply_to, j); }, reply_to);
    });
  }));
  return {};
}

void Coordinator::serve_api(const std::string& verb, const std::string& body, Reply reply,
                            const std::string& reply_to) {
  auto decoded = api::decode(verb, body);
  if (auto* bad = std::get_if<api::RequestError>(&decoded)) {
    metrics_.bad_input.Add({{"source", "api"}}).Increment();
    kLog.warn("API request refused", {{"verb", verb}, {"error", bad->error.message}});
    return reply(api::error_reply(*bad));
  }
  if (auto* part = std::get_if<api::PartRequest>(&std::get<api::Request>(decoded))) {
    if (reply_to.empty())
      return reply(api::error_reply(
          Error(ErrorCode::kInvalidArgument, "part: only NATS replies come in parts")));
    return api_part(*part, reply_to);
  }
  try {
    handle_api(std::get<api::Request>(decoded), reply);
  } catch (const std::exception& e) {
    // A bug, not bad input: answer, log and count it rather than leave the caller waiting.
    metrics_.bad_input.Add({{"source", "internal"}}).Increment();
    kLog.error("API request failed inside the coordinator", {{"verb", verb}, {"error", e.what()}});
    reply(api::error_reply(Error(ErrorCode::kInternal, "ferry.api." + verb + ": " + e.what())));
  }
}

void Coordinator::results_thread_main() {
  while (!stopping_) {
    auto msgs = results_->fetch(16, std::chrono::milliseconds(500));
    if (!msgs.ok()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    for (auto& m : *msgs) {
      auto shared = std::make_shared<bus::JsMessage>(std::move(m));
      loop_.post([this, shared] {
        ferry::v1::TaskResult r;
        const std::string& subj = shared->subject();
        if (!r.ParseFromString(shared->data()) || r.task_id().empty() ||
            r.outcome_case() == ferry::v1::TaskResult::OUTCOME_NOT_SET)
          bad_input("result", "not a TaskResult (" + subj + ")");
        else if (subj != subjects::result(r.node()))
          bad_input("result", "result of node \"" + r.node() + "\" sent on " + subj);
        else if (storage_ && storage::StorageMigrator::owns(r.task_id()))
          storage_->on_result(r);  // its state is the MigMigration's status
        else
          runner_->on_result(r);
        // durability_test: killed after the result changed memory, before it is stored.
        if (failpoint("kill-after-result")) raise(SIGKILL);
        // Acked only once the state change it caused is stored; if storing
        // failed, JetStream delivers it again (on_result is idempotent).
        status_.flush();
        store_->barrier([shared](Status s) {
          if (s.ok())
            (void)shared->ack();
          else
            (void)shared->nak(std::chrono::seconds(2));
        });
      });
    }
  }
}

// ---------------------------------------------------------------- lookups

const Resource* Coordinator::find(const ResourceKey& k) const {
  auto it = resources_.find(k);
  return it == resources_.end() ? nullptr : &it->second;
}

Json Coordinator::secret_for(const Resource& provider) const {
  auto sk =
      model::ref_key(provider.spec().value("secret", Json::object()), "Secret", provider.key().ns);
  const Resource* s = find(sk);
  return s ? s->doc : Json();
}

std::shared_ptr<ProviderPool> Coordinator::provider_slot(const ResourceKey& pk, Error* err) {
  auto it = providers_.find(pk);
  if (it != providers_.end()) return it->second;
  const Resource* p = find(pk);
  if (!p) {
    *err = Error(ErrorCode::kNotFound, pk.to_string() + " not found");
    return nullptr;
  }
  // Checked once here so a bad spec fails now, not inside a worker.
  auto probe = make_provider(*p, secret_for(*p));
  if (!probe.ok()) {
    *err = probe.error();
    return nullptr;
  }
  Resource copy = *p;
  Json secret = secret_for(*p);
  auto pool = std::make_shared<ProviderPool>([copy, secret] { return make_provider(copy, secret); },
                                             opts_.sessions_per_provider);
  providers_[pk] = pool;
  return pool;
}

void Coordinator::drop_provider(const ResourceKey& pk) {
  auto it = providers_.find(pk);
  if (it == providers_.end()) return;
  // The last reference goes on a worker (or with the call holding it there).
  loop_.run_blocking<int>(
      [pool = std::move(it->second)]() mutable {
        pool.reset();
        return 0;
      },
      [](int) {});
  providers_.erase(it);
}

void Coordinator::trim_sessions() {
  auto idle = std::chrono::milliseconds(static_cast<int64_t>(opts_.session_idle_seconds * 1000));
  // A session whose cookie an agent holds for a running copy stays open.
  auto held = std::make_shared<const std::set<std::string>>(tasks_.credentials_held());
  auto in_use = [held](const SourceProvider& p) {
    for (const auto& c : p.session_credentials())
      if (held->count(c)) return true;
    return false;
  };
  for (const auto& [pk, pool] : providers_)
    loop_.run_blocking<int>(
        [pool = pool, idle, in_use] { return pool->trim(idle, in_use); },
        [pk = pk](int ended) {
          if (ended > 0)
            kLog.info("idle source sessions logged out",
                      {{"provider", pk.to_string()}, {"sessions", std::to_string(ended)}});
        });
}

std::string Coordinator::host_address(const ResourceKey& pk, const std::string& host_id) const {
  for (const auto& [k, r] : resources_) {
    if (k.kind != "Host") continue;
    auto ref = model::ref_key(r.spec().value("provider", Json::object()), "Provider", k.ns);
    if (ref == pk && r.spec().value("id", "") == host_id) return r.spec().value("ipAddress", "");
  }
  return "";
}

validation::Context Coordinator::validation_context() const {
  validation::Context ctx;
  ctx.find = [this](const ResourceKey& x) { return find(x); };
  ctx.inventory = [this](const ResourceKey& k) -> const Json* { return inventory_of(k); };
  ctx.transfer_networks = agents_.networks();
  // Cluster mode: a NetworkAttachmentDefinition is a followed resource; local
  // mode has no API to ask (not checked).
  if (opts_.kubernetes)
    ctx.network_attachment = [this](const ResourceKey& k) { return find(k) != nullptr; };
  ctx.image_hooks = opts_.kubernetes;  // as Jobs
  return ctx;
}

const Json* Coordinator::inventory_of(const ResourceKey& pk) const {
  auto it = inventories_.find(pk);
  return it == inventories_.end() ? nullptr : it->second.get();
}

void Coordinator::refresh_inventories() {
  double now = now_seconds();
  for (const auto& [k, r] : resources_) {
    if (k.kind != "Provider" || refreshing_.count(k) ||
        r.spec().value("type", "") == "openshift")  // a destination has no inventory to read
      continue;
    double every = opts_.inventory_refresh_seconds;
    if (const Json* inv = inventory_of(k);
        inv && inv->contains("refreshSeconds") && (*inv)["refreshSeconds"].is_number())
      every = std::min(every, std::max(1.0, (*inv)["refreshSeconds"].get<double>()));
    auto at = refreshed_at_.try_emplace(k, now).first;  // loaded when it was applied
    if (now - at->second < every) continue;
    Error err;
    auto slot = provider_slot(k, &err);
    if (!slot) continue;
    refreshing_.insert(k);
    // Compared with the one held now on the worker, not the loop: an
    // unchanged inventory (most oVirt polls) comes back as null.
    using Read = Result<std::shared_ptr<const Json>>;
    loop_.run_blocking<Read>(
        [slot, held = inventories_.count(k) ? inventories_[k] : nullptr]() -> Read {
          auto inv =
              slot->with<Result<Inventory>>([](SourceProvider& p) { return p.load_inventory(); });
          if (!inv.ok()) return inv.error();
          if (held && *held == *inv) return std::shared_ptr<const Json>();
          return std::make_shared<const Json>(std::move(*inv));
        },
        [this, k = k, slot](Read inv) {
          refreshing_.erase(k);
          refreshed_at_[k] = now_seconds();
          if (!inv.ok()) {
            kLog.warn("inventory refresh failed",
                      {{"provider", k.to_string()}, {"error", inv.error().message}});
            return;
          }
          auto p = providers_.find(k);
          if (!resources_.count(k) || p == providers_.end() || p->second != slot) {
            refreshed_at_.erase(k);  // deleted or replaced meanwhile: its own read counts
            return;
          }
          if (!*inv) return;  // unchanged
          inventories_[k] = *inv;
          store_->put_inventory(k, std::move(*inv));
        });
  }
}

void Coordinator::set_inventory(const ResourceKey& pk, Inventory inventory) {
  if (auto it = inventories_.find(pk); it != inventories_.end() && *it->second == inventory)
    return;  // unchanged: nothing to store
  auto shared = std::make_shared<const Json>(std::move(inventory));
  inventories_[pk] = shared;
  store_->put_inventory(pk, std::move(shared));
}

void Coordinator::update_gauges() {
  static const char* kPlanPhases[] = {"Ready",  "Not ready", "Executing", "Succeeded",
                                      "Failed", "Canceled",  "Archived"};
  std::map<std::string, int> plans;
  for (const char* p : kPlanPhases) plans[p] = 0;
  for (const auto& [k, r] : resources_)
    if (k.kind == "Plan") {
      auto it = status_.find(k);
      plans[it == status_.end() ? "Ready" : it->second.value("phase", "Ready")]++;
    }
  for (const auto& [p, n] : plans) metrics_.plans_status.Add({{"status", p}}).Set(n);
  double now = now_seconds();
  for (const auto& [node, a] : agents_.agents())
    metrics_.heartbeat_age.Add({{"node", node}}).Set(now - a.last_seen);
  std::map<std::string, int> states;
  for (TaskState s : {TaskState::kPending, TaskState::kResolving, TaskState::kWaiting,
                      TaskState::kQueued, TaskState::kRunning})
    states[status::task_state_name(s)] = 0;
  for (const auto& [k, st] : status_)
    if (k.kind == "Migration" && st.value("phase", "") == "Running")
      for (const auto& vm : status_.vms(k))
        for (const auto& d : vm.disks) {
          std::string s = status::task_state_name(d.state);
          if (states.count(s)) states[s]++;
        }
  for (const auto& [s, n] : states) metrics_.disk_tasks.Add({{"state", s}}).Set(n);
}

std::optional<storage::Nodes> Coordinator::storage_nodes() {
  auto p = std::make_shared<std::promise<storage::Nodes>>();
  auto f = p->get_future();
  loop_.post([this, p] {
    storage::Nodes out;
    double now = now_seconds();
    for (const auto& [node, a] : agents_.agents()) {
      if (!agents_.live(node, now)) continue;
      storage::NodeView& v = out[node];
      for (const auto& r : a.hb.volume_roots()) {
        v.roots[r.storage_class()] = r.path();
        v.free_bytes[r.storage_class()] = r.free_bytes();
        auto& held = v.volumes[r.storage_class()];
        for (const auto& h : r.volumes()) held[h.path()] = {h.size_bytes(), h.block()};
        if (r.volumes_truncated()) v.truncated.insert(r.storage_class());
      }
      for (const auto& n : a.hb.networks()) v.networks[n.name()] = n.address();
    }
    p->set_value(std::move(out));
  });
  if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return std::nullopt;
  return f.get();
}

}  // namespace ferry::coordinator
