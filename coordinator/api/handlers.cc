// The coordinator's API handlers: one per verb of ferry.api.<verb>, each given
// a decoded request (coordinator/api/requests.h) and answering through
// `reply`, refusals in the one shape of api::error_reply. Loop thread.
#include <prometheus/text_serializer.h>
#include <fstream>

#include <malloc.h>

#include <algorithm>
#include <sstream>

#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/model/validate.h"
#include "coordinator/coordinator.h"
#include "coordinator/status/conditions.h"
#include "coordinator/validation/plan_validation.h"

namespace ferry::coordinator {

using model::Json;

namespace {

const Logger kLog("coordinator");

Json redact_secret(Json doc) {
  for (const char* f : {"data", "stringData"})
    if (doc.contains(f) && doc[f].is_object())
      for (auto it = doc[f].begin(); it != doc[f].end(); ++it) it.value() = "<redacted>";
  // kubectl apply keeps the whole document, data included, in an annotation.
  if (doc.contains("metadata") && doc["metadata"].is_object() &&
      doc["metadata"].contains("annotations") && doc["metadata"]["annotations"].is_object())
    doc["metadata"]["annotations"].erase("kubectl.kubernetes.io/last-applied-configuration");
  return doc;
}

}  // namespace

// ---------------------------------------------------------------- API

void Coordinator::handle_api(const api::Request& req, Reply reply) {
  std::visit(
      [&](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, api::ApplyRequest>) api_apply(r, reply);
        if constexpr (std::is_same_v<T, api::GetRequest>) api_get(r, reply);
        if constexpr (std::is_same_v<T, api::DeleteRequest>) api_delete(r, reply);
        if constexpr (std::is_same_v<T, api::CancelRequest>) api_cancel(r, reply);
        if constexpr (std::is_same_v<T, api::InventoryRequest>) api_inventory(r, reply);
        if constexpr (std::is_same_v<T, api::GatherRequest>) api_gather(r, reply);
        if constexpr (std::is_same_v<T, api::RetryRequest>) runner_->retry(r, reply);
        if constexpr (std::is_same_v<T, api::CutoverRequest>) api_cutover(r, reply);
        if constexpr (std::is_same_v<T, api::StatusRequest>) api_status(reply);
        if constexpr (std::is_same_v<T, api::PartRequest>) {
        }  // answered before dispatch
      },
      req);
}

void Coordinator::send_reply(const std::string& reply_to, const Json& j) {
  if (reply_to.empty()) return;
  std::string data = j.dump();
  if (data.size() <= kReplyPartBytes) {
    (void)bus_->respond(reply_to, data);
    return;
  }
  double now = now_seconds();
  for (auto it = large_replies_.begin(); it != large_replies_.end();)
    it = it->second.expires < now ? large_replies_.erase(it) : std::next(it);
  while (large_replies_.size() >= 16) large_replies_.erase(large_replies_.begin());
  std::string id =
      std::to_string(static_cast<uint64_t>(now)) + "-" + std::to_string(++large_reply_seq_);
  size_t parts = (data.size() + kReplyPartBytes - 1) / kReplyPartBytes;
  Json head = {{"ok", true}, {"replyId", id}, {"parts", parts}, {"bytes", data.size()}};
  large_replies_[id] = LargeReply{std::move(data), now + 60};
  (void)bus_->respond(reply_to, head.dump());
}

void Coordinator::api_part(const api::PartRequest& req, const std::string& reply_to) {
  auto it = large_replies_.find(req.reply_id);
  if (it == large_replies_.end())
    return send_reply(
        reply_to,
        api::error_reply(Error(ErrorCode::kNotFound, "ferry.api.part: replyId: \"" + req.reply_id +
                                                         "\" is unknown or expired")));
  const std::string& d = it->second.data;
  if (req.part * kReplyPartBytes >= d.size())
    return send_reply(
        reply_to, api::error_reply(Error(
                      ErrorCode::kInvalidArgument,
                      "ferry.api.part: part: " + std::to_string(req.part) + " is past the end")));
  (void)bus_->respond(reply_to, d.substr(req.part * kReplyPartBytes, kReplyPartBytes));
}

void Coordinator::api_status(Reply reply) {
  Json agents = Json::array();
  for (const auto& [n, a] : agents_.agents())
    agents.push_back({{"node", n},
                      {"lastSeenSecondsAgo", now_seconds() - a.last_seen},
                      {"tasksRunning", a.hb.tasks_running()}});
  reply({{"ok", true}, {"agents", agents}});
}

void Coordinator::api_apply(const api::ApplyRequest& req, Reply reply) {
  // MTC's storage-migration documents go their own way, on their own.
  {
    std::vector<Json> mig;
    std::vector<std::string> unreadable;
    size_t others = 0;
    for (const auto& f : req.files) {
      auto docs = model::yaml_to_json(f.text);
      if (!docs.ok()) {
        unreadable.push_back(f.name + ": " + docs.error().message);
        continue;
      }
      for (auto& d : *docs) {
        bool ours = d.is_object() && d.value("apiVersion", Json()).is_string() &&
                    d["apiVersion"].get<std::string>().rfind("migration.openshift.io/", 0) == 0;
        if (ours)
          mig.push_back(std::move(d));
        else if (!d.is_null())
          others++;
      }
    }
    if (!mig.empty() && others)
      return reply(api::error_reply(
          Error(ErrorCode::kInvalidArgument,
                "MigPlan and MigMigration documents (migration.openshift.io) are applied on "
                "their own, not together with forklift.konveyor.io resources; nothing was "
                "applied")));
    if (!mig.empty() && !unreadable.empty()) return reply(api::errors_reply(unreadable, {}));
    if (!mig.empty()) return storage_apply(std::move(mig), req.dry_run, std::move(reply));
  }
  // 1. Structural checks of every document; any error rejects the whole request.
  std::vector<Resource> batch;
  std::vector<std::string> problems, warnings;
  for (const auto& f : req.files) {
    auto dr = model::decode_documents(f.text, f.name);
    for (const auto& e : dr.errors) (e.warning ? warnings : problems).push_back(e.to_string());
    for (auto& r : dr.resources) batch.push_back(std::move(r));
  }
  if (!problems.empty()) return reply(api::errors_reply(problems, warnings));
  apply_batch(std::move(batch), req.dry_run ? ApplyMode::kDryRun : ApplyMode::kStore,
              std::move(reply));
}

// Local mode's MigPlans and MigMigrations (KV calls block: on a worker);
// cluster mode keeps them in the API, where kubectl reaches them.
void Coordinator::storage_call(const std::string& kind,
                               std::function<Json(storage::LocalCluster&)> call, Reply reply) {
  if (!local_storage_)
    return reply(api::error_reply(
        Error(ErrorCode::kInvalidArgument,
              "in cluster mode " + kind +
                  "s live in the Kubernetes API: use kubectl; nothing was changed")));
  loop_.run_blocking<Json>(
      [store = local_storage_, call = std::move(call)] {
        try {
          return call(*store);
        } catch (const std::exception& e) {  // (an answer, always)
          return api::error_reply(Error(ErrorCode::kInternal, e.what()));
        }
      },
      [reply](Json j) { reply(j); });
}

void Coordinator::storage_apply(std::vector<Json> docs, bool dry_run, Reply reply) {
  storage_call(
      "MigPlan",
      [docs = std::move(docs), dry_run](storage::LocalCluster& store) {
        auto r = store.apply(docs, dry_run);
        if (r.ok()) return Json{{"ok", true}, {"dryRun", dry_run}, {"applied", *r}};
        if (r.error().code != ErrorCode::kInvalidArgument) return api::error_reply(r.error());
        std::vector<std::string> problems;
        std::string line;
        std::istringstream in(r.error().message);
        while (std::getline(in, line)) problems.push_back(line);
        return api::errors_reply(problems, {});
      },
      std::move(reply));
}

void Coordinator::apply_batch(std::vector<Resource> batch, ApplyMode mode, Reply reply) {
  std::vector<std::string> problems;
  std::stable_sort(batch.begin(), batch.end(), [](const Resource& a, const Resource& b) {
    auto rank = [](const std::string& k) {
      const auto& ks = model::known_kinds();
      return std::find(ks.begin(), ks.end(), k) - ks.begin();
    };
    return rank(a.key().kind) < rank(b.key().kind);
  });
  // 2. Providers that are new or changed: connection test and inventory, off the loop.
  struct Pending {
    std::map<ResourceKey, Json> inv;
    std::vector<std::string> errors;
    int left = 0;
  };
  auto pending = std::make_shared<Pending>();
  std::map<ResourceKey, const Resource*> in_batch;
  for (const auto& r : batch) in_batch[r.key()] = &r;
  std::vector<std::pair<ResourceKey, std::function<Result<Inventory>()>>> loads;
  for (const auto& r : batch) {
    auto k = r.key();
    if (k.kind != "Provider" || r.spec().value("type", "") == "openshift") continue;
    const Resource* old = find(k);
    auto sk = model::ref_key(r.spec().value("secret", Json::object()), "Secret", k.ns);
    Json secret = in_batch.count(sk) ? in_batch[sk]->doc : (find(sk) ? find(sk)->doc : Json());
    bool secret_changed = in_batch.count(sk) && (!find(sk) || find(sk)->doc != secret);
    if (old && old->spec() == r.spec() && !secret_changed && inventories_.count(k)) continue;
    if (secret.is_null()) {
      problems.push_back(k.to_string() + ": spec.secret: " + sk.to_string() + " not found");
      continue;
    }
    auto prov = make_provider(r, secret);
    if (!prov.ok()) {
      problems.push_back(prov.error().message);
      continue;
    }
    std::shared_ptr<SourceProvider> p(std::move(*prov));
    loads.emplace_back(k, [p]() -> Result<Inventory> {
      auto s = p->test_connection();
      if (!s.ok()) return s.error();
      return p->load_inventory();
    });
  }
  if (!problems.empty()) return reply(api::errors_reply(problems));
  if (loads.empty()) {
    auto b = std::make_shared<std::vector<Resource>>(std::move(batch));
    return resource_txn([this, b, mode, reply](std::function<void()> done) {
      finish_apply(std::move(*b), {}, mode, reply, done);
    });
  }
  pending->left = static_cast<int>(loads.size());
  auto shared_batch = std::make_shared<std::vector<Resource>>(std::move(batch));
  for (auto& [k, fn] : loads) {
    loop_.run_blocking<Result<Inventory>>(
        fn, [this, k = k, pending, shared_batch, mode, reply](Result<Inventory> inv) {
          if (inv.ok())
            pending->inv[k] = std::move(*inv);
          else
            pending->errors.push_back(inv.error().message);
          if (--pending->left > 0) return;
          if (!pending->errors.empty()) return reply(api::errors_reply(pending->errors));
          resource_txn([this, shared_batch, pending, mode, reply](std::function<void()> done) {
            finish_apply(std::move(*shared_batch), std::move(pending->inv), mode, reply, done);
          });
        });
  }
}

void Coordinator::resource_txn(Txn txn) {
  txn_queue_.push_back(std::move(txn));
  if (txn_busy_) return;
  txn_busy_ = true;
  // Runs the queue; each transaction's `done` posts the next (never recurses).
  auto next = std::make_shared<std::function<void()>>();
  *next = [this, next] {
    if (txn_queue_.empty()) {
      txn_busy_ = false;
      return;
    }
    Txn t = std::move(txn_queue_.front());
    txn_queue_.pop_front();
    auto once = std::make_shared<bool>(false);
    t([this, next, once] {
      if (*once) return;
      *once = true;
      loop_.post([next] { (*next)(); });
    });
  };
  (*next)();
}

void Coordinator::write_resources(std::vector<store::StateStore::ResourceWrite> writes,
                                  std::function<void(Status)> then) {
  store_->write_resources(std::move(writes), [this, then = std::move(then)](Status s) {
    loop_.post([then, s] { then(s); });
  });
}

void Coordinator::finish_apply(std::vector<Resource> batch, std::map<ResourceKey, Json> new_inv,
                               ApplyMode mode, Reply reply, std::function<void()> done) {
  const bool observed = mode == ApplyMode::kObserved;
  auto answer = [reply, done](const Json& j) {
    reply(j);
    done();
  };
  // 3. Cross-resource checks against the store as it would be after this apply.
  std::map<ResourceKey, const Resource*> view;
  for (const auto& [k, r] : resources_) view[k] = &r;
  for (const auto& r : batch) view[r.key()] = &r;
  auto lookup = [&](const ResourceKey& k) -> const Resource* {
    auto it = view.find(k);
    return it == view.end() ? nullptr : it->second;
  };
  std::vector<std::string> problems, notes;
  std::map<ResourceKey, Json> plan_status;
  for (const auto& r : batch) {
    auto k = r.key();
    const Json& spec = r.spec();
    auto need = [&](const Json& ref, const char* kind, const std::string& field) {
      auto rk = model::ref_key(ref, kind, k.ns);
      if (!lookup(rk))
        problems.push_back(k.to_string() + ": " + field + ": " + rk.to_string() + " not found");
      return rk;
    };
    if (k.kind == "Host") {
      auto pk = need(spec["provider"], "Provider", "spec.provider");
      const Json* inv = new_inv.count(pk) ? &new_inv[pk] : inventory_of(pk);
      if (inv && !validation::find_by_id_or_name((*inv)["hosts"], {{"id", spec.value("id", "")}}))
        problems.push_back(k.to_string() + ": spec.id: host \"" + spec.value("id", "") +
                           "\" not found in " + pk.to_string() + " inventory");
    } else if (k.kind == "NetworkMap" || k.kind == "StorageMap") {
      need(spec["provider"]["source"], "Provider", "spec.provider.source");
      need(spec["provider"]["destination"], "Provider", "spec.provider.destination");
    } else if (k.kind == "Plan") {
      validation::Context ctx = validation_context();
      ctx.find = lookup;
      ctx.inventory = [&](const ResourceKey& pk) -> const Json* {
        return new_inv.count(pk) ? &new_inv[pk] : inventory_of(pk);
      };
      if (status_.count(k))
        for (const auto& v : status_[k].value("completedVMs", Json::array()))
          ctx.completed_vm_ids.insert(v.get<std::string>());
      auto res = validation::validate_plan(r, ctx);
      // Observed (cluster mode): the Plan exists anyway; its conditions say why it cannot run.
      if (!res.ready() && !observed) {
        problems.push_back(k.to_string() + " is not ready:\n  " + [&] {
          std::string s = res.summary();
          for (size_t p = s.find('\n'); p != std::string::npos; p = s.find('\n', p + 3))
            s.replace(p, 1, "\n  ");
          return s;
        }());
      }
      for (const auto& c : res.conditions)
        if (c.category == "Warn") notes.push_back("warning: " + c.message);
      plan_status[k] = res.conditions_json();
    } else if (k.kind == "Migration") {
      auto pk = need(spec["plan"], "Plan", "spec.plan");
      const Resource* plan = lookup(pk);
      if (find(k)) {
        // Changing only spec.cutover of a running Migration is how MTV users
        // schedule a warm cutover.
        Json before = find(k)->spec(), after = spec;
        before.erase("cutover");
        after.erase("cutover");
        if (before == after && status_.count(k) && status_[k].value("phase", "") == "Running")
          continue;
        problems.push_back(k.to_string() +
                           ": already exists; a Migration runs once — create a new one to run " +
                           pk.to_string() + " again");
        continue;
      }
      for (const auto& [sk, st] : status_)
        if (sk.kind == "Migration" && st.value("phase", "") == "Running" &&
            st.value("plan", "") == pk.to_string())
          problems.push_back(k.to_string() + ": spec.plan: " + pk.to_string() +
                             " is already being run by " + sk.to_string() +
                             "; only one Migration per Plan runs at a time");
      if (plan && plan->spec().value("archived", false))
        problems.push_back(k.to_string() + ": spec.plan: " + pk.to_string() + " is archived");
      // Observed: the Plan may be stored without being ready (its conditions say why).
      if (observed && plan && status_.count(pk) && status_[pk].value("phase", "") == "Not ready")
        problems.push_back(k.to_string() + ": spec.plan: " + pk.to_string() +
                           " is not ready (see its conditions)");
    }
    // A running Migration's Plan is frozen.
    if (k.kind == "Plan" && find(k) && find(k)->spec() != spec)
      for (const auto& [sk, st] : status_)
        if (sk.kind == "Migration" && st.value("phase", "") == "Running" &&
            st.value("plan", "") == k.to_string())
          problems.push_back(k.to_string() + ": cannot change a Plan while " + sk.to_string() +
                             " runs it");
  }
  if (!problems.empty()) return answer(api::errors_reply(problems, notes));
  if (mode == ApplyMode::kDryRun) {
    Json would = Json::array();
    for (const auto& r : batch) {
      const Resource* old = find(r.key());
      Json doc = r.doc;
      doc.erase("status");
      would.push_back({{"resource", r.key().to_string()},
                       {"result", old && old->doc == doc ? "unchanged" : "configured"}});
    }
    return answer({{"ok", true}, {"dryRun", true}, {"applied", would}, {"warnings", notes}});
  }
  // 4. Store everything (all or nothing), then change memory and act.
  std::vector<store::StateStore::ResourceWrite> writes;
  for (const auto& r : batch) {
    Json doc = r.doc;
    doc.erase("status");
    writes.push_back({r.key(), doc});
  }
  auto shared = std::make_shared<std::vector<Resource>>(std::move(batch));
  auto inv = std::make_shared<std::map<ResourceKey, Json>>(std::move(new_inv));
  auto conditions = std::make_shared<std::map<ResourceKey, Json>>(std::move(plan_status));
  auto stored = [this, shared, inv, conditions, notes, answer](Status s) {
    if (!s.ok()) {
      kLog.warn("apply not stored", {{"error", s.error().message}});
      return answer(api::error_reply(s.error().wrap("apply")));
    }
    Json applied = Json::array();
    for (auto& [pk, i] : *inv) {
      set_inventory(pk, std::move(i));
      drop_provider(pk);  // re-created with the new spec/secret
    }
    inv->clear();
    std::vector<ResourceKey> migrations, cutover_changed;
    for (const auto& r : *shared) {
      auto k = r.key();
      Json doc = r.doc;
      doc.erase("status");
      bool changed = !find(k) || find(k)->doc != doc;
      resources_[k] = Resource{doc};
      if (k.kind == "Secret") {
        // Providers using this secret reconnect with it.
        std::vector<ResourceKey> using_it;
        for (const auto& [pk, pool] : providers_)
          if (find(pk) && secret_for(*find(pk)) == doc) using_it.push_back(pk);
        for (const auto& pk : using_it) drop_provider(pk);
      }
      if (k.kind == "Provider") {
        Json& st = status_[k];
        st["phase"] = "Ready";
        st["conditions"] = Json::array(
            {{{"type", "ConnectionTestSucceeded"}, {"status", "True"}, {"category", "Required"}},
             {{"type", "InventoryCreated"}, {"status", "True"}, {"category", "Required"}},
             {{"type", "Ready"}, {"status", "True"}, {"category", "Required"}}});
        if (const Json* i = inventory_of(k)) st["vmCount"] = i->value("vms", Json::array()).size();
        status_.save(k);
      }
      if (k.kind == "Plan") {
        Json& st = status_[k];
        st["conditions"] = status::with_execution_conditions((*conditions)[k], st);
        bool ready = true;
        for (const auto& c : (*conditions)[k])
          if (c.value("category", "") == "Critical") ready = false;
        if (!st.contains("phase") || st["phase"] == "Not ready" || st["phase"] == "Ready")
          st["phase"] = ready ? "Ready" : "Not ready";
        status_.save(k);
      }
      if (k.kind == "Migration" && changed) {
        if (status_.count(k))
          cutover_changed.push_back(k);
        else
          migrations.push_back(k);
      }
      applied.push_back(
          {{"resource", k.to_string()}, {"result", changed ? "configured" : "unchanged"}});
    }
    for (const auto& k : migrations) runner_->start_migration(k);
    for (const auto& k : cutover_changed) runner_->pump(k);  // warm VMs re-check their cutover time
    answer({{"ok", true}, {"applied", applied}, {"warnings", notes}});
    // An inventory's apply frees several transient copies of it (the loaded
    // one, the store's queued one, its serialized chunks); give the pages back.
    if (!inv->empty()) malloc_trim(0);
  };
  if (observed) return stored({});  // already stored by whoever changed it
  write_resources(std::move(writes), stored);
}

void Coordinator::api_get(const api::GetRequest& req, Reply reply) {
  if (model::is_storage_kind(req.kind))
    return storage_call(
        req.kind,
        [req](storage::LocalCluster& store) {
          auto r = store.find(req.kind, req.ns, req.name);
          if (!r.ok()) return api::error_reply(r.error());
          return Json{{"ok", true}, {"items", *r}};
        },
        std::move(reply));
  const std::string &kind = req.kind, &ns = req.ns, &name = req.name;
  Json items = Json::array();
  for (const auto& [k, r] : resources_) {
    if (k.kind != kind || (!ns.empty() && k.ns != ns) || (!name.empty() && k.name != name))
      continue;
    Json doc = k.kind == "Secret" ? redact_secret(r.doc) : r.doc;
    if (status_.count(k)) doc["status"] = status_.document(k);
    if (k.kind == "Plan") {
      if (!doc["status"].is_object()) doc["status"] = Json::object();
      // The plan's conditions are recomputed against the current inventory.
      validation::Context ctx = validation_context();
      for (const auto& v : doc["status"].value("completedVMs", Json::array()))
        ctx.completed_vm_ids.insert(v.get<std::string>());
      auto res = validation::validate_plan(r, ctx);
      // Validation's conditions are computed now; the execution conditions
      // are what the last run stored.
      doc["status"]["conditions"] =
          status::with_execution_conditions(res.conditions_json(), doc["status"]);
      // What the last run's preflight inspection found is a critical concern too.
      Json& conds = doc["status"]["conditions"];
      for (const auto& c : doc["status"].value("inspectionConditions", Json::array())) {
        conds.erase(std::remove_if(conds.begin(), conds.end(),
                                   [](const Json& x) { return x.value("type", "") == "Ready"; }),
                    conds.end());
        conds.push_back(c);
      }
      doc["status"].erase("inspectionConditions");
      std::string phase = doc["status"].value("phase", "");
      if (phase.empty() || phase == "Ready" || phase == "Not ready")
        doc["status"]["phase"] = res.ready() ? "Ready" : "Not ready";
    }
    items.push_back(doc);
  }
  if (!name.empty() && items.empty())
    return reply(api::error_reply(Error(
        ErrorCode::kNotFound,
        kind + " " + (ns.empty() ? model::kDefaultNamespace : ns) + "/" + name + " not found")));
  reply({{"ok", true}, {"items", items}});
}

void Coordinator::api_inventory(const api::InventoryRequest& req, Reply reply) {
  std::string ns = req.ns, name = req.provider;
  auto answer = [this, ns, name, reply] {
    Json out = Json::array();
    for (const auto& [k, inv] : inventories_) {
      if ((!ns.empty() && k.ns != ns) || (!name.empty() && k.name != name)) continue;
      out.push_back({{"provider", k.to_string()}, {"inventory", *inv}});
    }
    if (!name.empty() && out.empty())
      return reply(
          api::error_reply(Error(ErrorCode::kNotFound, "Provider " + name + " has no inventory")));
    reply({{"ok", true}, {"items", out}});
  };
  if (!req.refresh) return answer();
  // Reload the matching providers' inventories from the source first.
  auto left = std::make_shared<int>(0);
  std::vector<std::pair<ResourceKey, std::shared_ptr<ProviderPool>>> slots;
  // Every matching source Provider, also one whose stored inventory was lost.
  for (const auto& [k, r] : resources_) {
    if (k.kind != "Provider" || r.spec().value("type", "") == "openshift") continue;
    if ((!ns.empty() && k.ns != ns) || (!name.empty() && k.name != name)) continue;
    Error err;
    if (auto slot = provider_slot(k, &err)) slots.emplace_back(k, slot);
  }
  if (slots.empty()) return answer();
  *left = static_cast<int>(slots.size());
  for (auto& [k, slot] : slots)
    loop_.run_blocking<Result<Inventory>>(
        [slot = slot] {
          return slot->with<Result<Inventory>>(
              [](SourceProvider& p) { return p.load_inventory(); });
        },
        [this, k = k, left, answer](Result<Inventory> inv) {
          if (inv.ok()) set_inventory(k, std::move(*inv));
          if (--*left == 0) answer();
        });
}

// must-gather: resources (secrets redacted), statuses, inventories, agents,
// recent log lines and a metrics snapshot; narrowed to a plan and/or VM.
void Coordinator::api_gather(const api::GatherRequest& req, Reply reply) {
  const std::string &plan = req.plan, &vm = req.vm, &ns = req.ns;
  std::set<ResourceKey> keep;  // empty: everything
  std::set<std::string> vm_terms;
  if (!plan.empty()) {
    ResourceKey pk{"Plan", ns, plan};
    const Resource* p = find(pk);
    if (!p)
      return reply(api::error_reply(
          Error(ErrorCode::kNotFound, "--plan: " + pk.to_string() + " not found")));
    keep.insert(pk);
    const Json& s = p->spec();
    keep.insert(model::ref_key(s["provider"]["source"], "Provider", ns));
    keep.insert(model::ref_key(s["provider"]["destination"], "Provider", ns));
    keep.insert(model::ref_key(s["map"]["network"], "NetworkMap", ns));
    keep.insert(model::ref_key(s["map"]["storage"], "StorageMap", ns));
    if (const Resource* src = find(model::ref_key(s["provider"]["source"], "Provider", ns)))
      keep.insert(model::ref_key(src->spec().value("secret", Json::object()), "Secret", ns));
    for (const auto& [k, st] : status_)
      if (k.kind == "Migration" && st.value("plan", "") == pk.to_string()) keep.insert(k);
  }
  Json resources = Json::array();
  for (const auto& [k, r] : resources_) {
    if (!keep.empty() && !keep.count(k)) continue;
    Json doc = k.kind == "Secret" ? redact_secret(r.doc) : r.doc;
    if (status_.count(k)) {
      doc["status"] = status_.document(k);
      if (!vm.empty() && k.kind == "Migration") {
        Json vms = Json::array();
        for (const auto& v : doc["status"].value("vms", Json::array()))
          if (v.value("name", "") == vm || v.value("id", "") == vm) {
            vms.push_back(v);
            vm_terms.insert(v.value("id", ""));
          }
        doc["status"]["vms"] = vms;
      }
    }
    resources.push_back(doc);
  }
  if (!vm.empty()) vm_terms.insert(vm);
  // Log lines are JSON: select by their plan/migration/vm/task fields.
  std::set<std::string> plan_terms;
  for (const auto& k : keep)
    if (k.kind == "Plan" || k.kind == "Migration") {
      plan_terms.insert(k.to_string());
      plan_terms.insert(k.ns + "/" + k.name);
    }
  Json logs = Json::array();
  for (const auto& line : Logger::recent()) {
    Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;
    bool match = true;
    if (!plan.empty())
      match = plan_terms.count(j.value("plan", "")) || plan_terms.count(j.value("migration", ""));
    if (!vm.empty()) {
      bool vm_match = false;
      for (const auto& t : vm_terms) {
        if (t.empty()) continue;
        vm_match = vm_match || j.value("vm", "") == t ||
                   j.value("task", "").find("." + t + ".") != std::string::npos;
      }
      match = match && vm_match;
    }
    if (match) logs.push_back(line);
  }
  // Every hook's whole output (capped by the runner), for the VMs gathered:
  // read on a worker, never on the loop.
  std::vector<std::pair<std::string, std::string>> hook_log_paths;  // name, file
  for (const auto& r : resources)
    if (r.value("kind", "") == "Migration" && r.contains("status"))
      for (const auto& v : r["status"].value("vms", Json::array())) {
        if (!v.contains("hooks") || !v["hooks"].is_object()) continue;
        for (const auto& [hook_step, h] : v["hooks"].items())
          if (!h.value("log", "").empty())
            hook_log_paths.emplace_back(r["metadata"].value("namespace", "") + "." +
                                            r["metadata"].value("name", "") + "." +
                                            v.value("name", "") + "." + hook_step,
                                        h.value("log", ""));
      }
  Json inv = Json::object();
  for (const auto& [k, i] : inventories_)
    if (keep.empty() || keep.count(k)) inv[k.ns + "." + k.name] = *i;
  Json agents = Json::array();
  for (const auto& [n, a] : agents_.agents()) {
    Json roots = Json::array();
    for (const auto& r : a.hb.volume_roots())
      roots.push_back(
          {{"storageClass", r.storage_class()}, {"path", r.path()}, {"free", r.free_bytes()}});
    agents.push_back({{"node", n},
                      {"lastSeenSecondsAgo", now_seconds() - a.last_seen},
                      {"volumeRoots", roots},
                      {"tasksRunning", a.hb.tasks_running()}});
  }
  prometheus::TextSerializer ser;
  auto answer =
      std::make_shared<Json>(Json{{"ok", true},
                                  {"resources", std::move(resources)},
                                  {"inventories", std::move(inv)},
                                  {"agents", std::move(agents)},
                                  {"logs", std::move(logs)},
                                  {"metrics", ser.Serialize(metrics_.registry->Collect())},
                                  {"gatheredAt", now_iso()}});
  loop_.run_blocking<Json>(
      [paths = std::move(hook_log_paths)] {
        Json hook_logs = Json::object();
        for (const auto& [name, path] : paths) {
          std::ifstream in(path);
          hook_logs[name] =
              std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        }
        return hook_logs;
      },
      [answer, reply](Json hook_logs) {
        (*answer)["hookLogs"] = std::move(hook_logs);
        reply(*answer);
      });
}

void Coordinator::api_delete(const api::DeleteRequest& req, Reply reply) {
  if (model::is_storage_kind(req.kind))  // a running MigMigration deleted stops
    return storage_call(
        req.kind,
        [req](storage::LocalCluster& store) {
          Status s = store.remove(req.kind, req.ns, req.name);
          if (!s.ok()) return api::error_reply(s.error());
          std::string ns = req.ns.empty() ? model::kDefaultNamespace : req.ns;
          return Json{{"ok", true}, {"deleted", req.kind + " " + ns + "/" + req.name}};
        },
        std::move(reply));
  resource_txn([this, req, reply](std::function<void()> done) {
    auto answer = [reply, done](const Json& j) {
      reply(j);
      done();
    };
    ResourceKey k{req.kind, req.ns, req.name};
    if (!find(k))
      return answer(api::error_reply(Error(ErrorCode::kNotFound, k.to_string() + " not found")));
    if (k.kind == "Plan")
      for (const auto& [sk, st] : status_)
        if (sk.kind == "Migration" && st.value("phase", "") == "Running" &&
            st.value("plan", "") == k.to_string())
          return answer(api::error_reply(Error(
              ErrorCode::kFailedPrecondition, k.to_string() + " is being run by " + sk.to_string() +
                                                  "; cancel or delete the Migration first")));
    if (k.kind == "Hook")  // a Plan would lose a step it was validated with
      for (const auto& [pk, r] : resources_) {
        if (pk.kind != "Plan") continue;
        const Json& vms = r.spec().value("vms", Json::array());
        for (size_t i = 0; vms.is_array() && i < vms.size(); i++) {
          const Json& hs = vms[i].value("hooks", Json::array());
          for (size_t j = 0; hs.is_array() && j < hs.size(); j++)
            if (hs[j].is_object() && hs[j].contains("hook") &&
                model::ref_key(hs[j]["hook"], "Hook", pk.ns) == k)
              return answer(api::error_reply(Error(ErrorCode::kFailedPrecondition,
                                                   k.to_string() + " is used by " + pk.to_string() +
                                                       " (spec.vms[" + std::to_string(i) +
                                                       "].hooks[" + std::to_string(j) +
                                                       "]); remove it from the Plan first")));
        }
      }
    write_resources({{k, std::nullopt}}, [this, k, answer](Status s) {
      if (!s.ok()) return answer(api::error_reply(s.error().wrap("delete " + k.to_string())));
      forget_resource(k);
      answer({{"ok", true}, {"deleted", k.to_string()}});
    });
  });
}

void Coordinator::forget_resource(const ResourceKey& k) {
  if (k.kind == "Migration" && status_.count(k) && status_[k].value("phase", "") == "Running") {
    // MTV: deleting a running Migration cancels it.
    std::vector<std::string> ids;
    for (const auto& vm : status_.vms(k)) ids.push_back(vm.id);
    for (const auto& id : ids) runner_->cancel_vm(k, id);
    runner_->maybe_finish_migration(k);
    status_.flush();
  }
  status_.erase(k);
  resources_.erase(k);
  drop_provider(k);
  if (k.kind == "Provider") {
    inventories_.erase(k);
    store_->erase_inventory(k);
  }
}

void Coordinator::api_cancel(const api::CancelRequest& req, Reply reply) {
  ResourceKey k{"Migration", req.migration.ns, req.migration.name};
  if (!find(k) || !status_.count(k))
    return reply(api::error_reply(Error(ErrorCode::kNotFound, k.to_string() + " not found")));
  const std::vector<std::string>& names = req.vms;
  // (name, id) of the VMs to cancel, chosen before any is.
  std::vector<std::pair<std::string, std::string>> chosen;
  for (const auto& n : names) {
    bool found = false;
    for (const auto& vm : status_.vms(k))
      if (vm.name == n || vm.id == n) {
        found = true;
        std::pair<std::string, std::string> c{vm.name, vm.id};
        if (!vm.terminal() && std::find(chosen.begin(), chosen.end(), c) == chosen.end())
          chosen.push_back(c);
      }
    if (!found)
      return reply(
          api::error_reply(Error(ErrorCode::kNotFound, k.to_string() + ": --vm: VM \"" + n +
                                                           "\" is not part of this migration")));
  }
  if (names.empty())
    for (const auto& vm : status_.vms(k))
      if (!vm.terminal()) chosen.emplace_back(vm.name, vm.id);
  Json canceled = Json::array();
  for (const auto& [name, id] : chosen) {
    runner_->cancel_vm(k, id);
    canceled.push_back(name);
  }
  runner_->maybe_finish_migration(k);
  reply({{"ok", true}, {"canceled", canceled}});
}

void Coordinator::api_cutover(const api::CutoverRequest& req, Reply reply) {
  ResourceKey k{"Migration", req.migration.ns, req.migration.name};
  auto err = [&](ErrorCode c, const std::string& m) { reply(api::error_reply(Error(c, m))); };
  auto it = status_.find(k);
  if (!find(k) || it == status_.end())
    return err(ErrorCode::kNotFound, k.to_string() + " not found");
  if (it->second.value("phase", "") != "Running")
    return err(ErrorCode::kFailedPrecondition,
               k.to_string() + " is " + it->second.value("phase", "") + "; nothing to cut over");
  std::string at = req.at;
  if (at.empty()) at = now_iso();
  if (!model::parse_rfc3339(at))
    return err(
        ErrorCode::kInvalidArgument,
        k.to_string() + ": --at: \"" + at + "\" is not an RFC 3339 time (2021-04-04T01:23:45Z)");
  const std::string& sel = req.vm;
  Json vms = Json::array();
  for (const auto& vm : status_.vms(k)) {
    if (!sel.empty() && vm.name != sel && vm.id != sel) continue;
    if (!vm.warm) {
      if (!sel.empty())
        return err(ErrorCode::kFailedPrecondition,
                   k.to_string() + ": --vm: VM \"" + sel + "\" is not migrating warm");
      continue;
    }
    if (!sel.empty()) status_.vm(k, vm.id)->warm->cutover = at;  // marked changed
    vms.push_back(vm.name);
  }
  if (!sel.empty() && vms.empty())
    return err(ErrorCode::kNotFound,
               k.to_string() + ": --vm: VM \"" + sel + "\" is not part of this migration");
  if (vms.empty()) return err(ErrorCode::kFailedPrecondition, k.to_string() + " has no warm VMs");
  auto scheduled = [this, k, at, vms, reply] {
    status_.save(k);
    kLog.info("cutover scheduled", {{"migration", k.to_string()}, {"at", at}});
    runner_->pump(k);
    reply({{"ok", true}, {"cutover", at}, {"vms", vms}});
  };
  if (!sel.empty()) return scheduled();
  // Like `oc patch migration --type merge -p '{"spec":{"cutover":...}}'` in MTV.
  resource_txn([this, k, at, reply, scheduled](std::function<void()> done) {
    const Resource* r = find(k);
    if (!r) {
      reply(api::error_reply(Error(ErrorCode::kNotFound, k.to_string() + " was deleted")));
      return done();
    }
    Json doc = r->doc;
    doc["spec"]["cutover"] = at;
    write_resources({{k, doc}}, [this, k, doc, reply, scheduled, done](Status s) {
      if (s.ok()) {
        resources_[k] = Resource{doc};
        scheduled();
      } else {
        reply(api::error_reply(s.error().wrap("cutover " + k.to_string())));
      }
      done();
    });
  });
}

}  // namespace ferry::coordinator
