// Cluster mode: resources changed in the Kubernetes API (kubectl, the
// console) go through the same checks as `ferryctl apply`. What an apply would
// refuse cannot be refused here (the object exists), so it becomes a Critical
// condition on the object's status, and nothing runs from it. Loop thread.
#include "common/base/clock.h"
#include "common/base/log.h"
#include "coordinator/coordinator.h"
#include "coordinator/status/conditions.h"

namespace ferry::coordinator {

using model::Json;

namespace {
const Logger kLog("coordinator");
}  // namespace

void Coordinator::observe(const ResourceKey& k, std::optional<Json> doc) {
  if (!doc) {
    not_ready_.erase(k);
    resource_txn([this, k](std::function<void()> done) {
      if (find(k)) {
        kLog.info("deleted in the Kubernetes API", {{"resource", k.to_string()}});
        forget_resource(k);
        if (k.kind == "Hook") recheck_plans_using(k);
      }
      // The canceled VMs are stored before the object may go (if storing
      // fails, the finalizer stays: the next start sees the deletion again).
      store_->barrier([this, k](Status s) {
        if (s.ok()) store_->finalized(k);
      });
      done();
    });
    return;
  }
  const Resource* old = find(k);
  if (old && old->doc == *doc) return;  // our own write coming back, or only its status changed
  kLog.info("changed in the Kubernetes API", {{"resource", k.to_string()}});
  check_observed(k, *doc);
  if (k.kind == "Hook") recheck_plans_using(k);
}

void Coordinator::recheck_plans_using(const ResourceKey& hook) {
  for (const auto& [pk, r] : resources_) {
    if (pk.kind != "Plan") continue;
    bool uses = false;
    for (const auto& vm : r.spec().value("vms", Json::array()))
      for (const auto& h : vm.is_object() ? vm.value("hooks", Json::array()) : Json::array())
        uses = uses || (h.is_object() && h.contains("hook") &&
                        model::ref_key(h["hook"], "Hook", pk.ns) == hook);
    if (!uses) continue;
    ResourceKey plan = pk;
    Json doc = r.doc;
    loop_.post([this, plan, doc] {
      if (find(plan) && find(plan)->doc == doc) check_observed(plan, doc);
    });
  }
}

void Coordinator::check_observed(const ResourceKey& k, const Json& doc) {
  if (k.kind == "Migration" && find(k) && status_.count(k)) {
    if (status_[k].value("phase", "") != "Not ready") return observe_migration_spec(k, doc);
    status_.drop(k);  // it never ran: checked again as if new
    resources_.erase(k);
  }
  apply_batch({Resource{doc}}, ApplyMode::kObserved, [this, k, doc](const Json& answer) {
    if (answer.value("ok", false)) {
      // A Plan is kept even when it cannot run; its conditions say why, and
      // it waits for what it lacks like any other.
      if (k.kind == "Plan" && status_[k].value("phase", "") == "Not ready") {
        not_ready_.insert(k);
        return;
      }
      if (k.kind == "NetworkMap" || k.kind == "StorageMap" || k.kind == "Host" ||
          k.kind == "Hook") {  // (Providers, Plans and Migrations have their own)
        Json& st = status_[k];
        if (!st.is_object()) st = Json::object();
        status::clear_condition(st, "NotReady");
        status::set_condition(st, "Ready", "Required", "The resource is ready.", now_iso());
        st["phase"] = "Ready";
        status_.save(k);
      }
      // Something became usable: what was waiting for it is checked again.
      if (not_ready_.erase(k) || !not_ready_.empty())
        for (const auto& w : std::set<ResourceKey>(not_ready_))
          if (w != k && find(w)) {
            Json d = find(w)->doc;
            loop_.post([this, w, d] {
              if (not_ready_.count(w) && find(w) && find(w)->doc == d) check_observed(w, d);
            });
          }
      return;
    }
    not_ready_.insert(k);
    // The object stays as the user wrote it; its status says what is wrong.
    resources_[k] = Resource{doc};
    drop_provider(k);
    Json& st = status_[k];
    if (!st.is_object()) st = Json::object();
    std::string why = answer.value("error", "");
    status::clear_condition(st, "Ready");
    if (k.kind == "Provider") {
      st["phase"] = "ConnectionFailed";
      status::clear_condition(st, "ConnectionTestSucceeded");
      status::set_condition(st, "ConnectionTestFailed", "Critical", why, now_iso());
    } else {
      st["phase"] = "Not ready";
      status::set_condition(st, "NotReady", "Critical", why, now_iso());
    }
    for (auto& c : st["conditions"])
      if (c.value("type", "") != "Ready" && c.value("category", "") == "Critical")
        c["status"] = "True";
    kLog.warn("resource not usable", {{"resource", k.to_string()}, {"why", why}});
    store_->record_event(k, "Warning", k.kind == "Provider" ? "ConnectionTestFailed" : "NotReady",
                         why);
    status_.save(k);
  });
}

void Coordinator::observe_migration_spec(const ResourceKey& k, const Json& doc) {
  Json before = find(k)->spec();
  resources_[k] = Resource{doc};
  const Json& after = doc.value("spec", Json::object());
  if (before.value("plan", Json()) != after.value("plan", Json()))
    kLog.warn("spec.plan of a started Migration changed; ignored (create a new Migration)",
              {{"migration", k.to_string()}});
  Json& st = status_[k];
  if (st.value("phase", "") != "Running") return;
  // spec.cancel: VMs (by id or name) to stop; the others go on.
  std::set<std::string> sel;
  for (const auto& c : after.value("cancel", Json::array()))
    if (c.is_object()) {
      if (!c.value("id", "").empty()) sel.insert(c.value("id", ""));
      if (!c.value("name", "").empty()) sel.insert(c.value("name", ""));
    }
  std::vector<std::string> ids;
  for (const auto& vm : status_.vms(k))
    if ((sel.count(vm.id) || sel.count(vm.name)) && !vm.terminal()) {
      kLog.info("VM canceled through spec.cancel", {{"migration", k.to_string()}, {"vm", vm.name}});
      ids.push_back(vm.id);
    }
  for (const auto& id : ids) runner_->cancel_vm(k, id);
  runner_->maybe_finish_migration(k);
  // spec.cutover: warm VMs look at their cutover time again.
  if (before.value("cutover", Json()) != after.value("cutover", Json())) runner_->pump(k);
}

}  // namespace ferry::coordinator
