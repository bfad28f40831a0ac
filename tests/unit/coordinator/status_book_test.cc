// StatusBook: what is marked is written, once, in the store's shape (a
// Migration as its summary plus one entry per changed VM); a stored status of
// the wrong shape is refused; erase removes the VMs' entries too.
#include <catch2/catch.hpp>

#include <map>
#include <utility>

#include "coordinator/status/status_book.h"

using ferry::Status;
using ferry::coordinator::status::StatusBook;
using ferry::coordinator::status::VmStatus;
using ferry::model::Json;
using ferry::model::ResourceKey;

namespace {

// Records what the book writes; everything else is unused here.
class RecordingStore : public ferry::coordinator::store::StateStore {
 public:
  std::map<std::string, Json> statuses;                      // key -> last put_status
  std::map<std::pair<std::string, size_t>, Json> vm_writes;  // (key, index) -> last put_vm_status
  int status_puts = 0, vm_puts = 0;
  std::map<std::string, size_t> erased;  // key -> vm_count

  Status load_resources(std::function<void(const ResourceKey&, Json)>, Bad) override { return {}; }
  void write_resources(std::vector<ResourceWrite>, std::function<void(Status)> done) override {
    done({});
  }
  Status load_status(std::function<void(const ResourceKey&, Json)>, Bad) override { return {}; }
  Status load_inventories(std::function<void(const ResourceKey&, Json)>, Bad) override {
    return {};
  }
  void put_status(const ResourceKey& k, const Json& st) override {
    statuses[k.to_string()] = st;
    status_puts++;
  }
  void put_vm_status(const ResourceKey& m, size_t i, const Json& vm) override {
    vm_writes[{m.to_string(), i}] = vm;
    vm_puts++;
  }
  void erase_status(const ResourceKey& k, size_t vm_count) override {
    erased[k.to_string()] = vm_count;
  }
  void put_inventory(const ResourceKey&, std::shared_ptr<const Json>) override {}
  void erase_inventory(const ResourceKey&) override {}
  void barrier(std::function<void(Status)> done) override { done({}); }
  ferry::coordinator::store::StoreStats stats() const override { return {}; }
};

std::vector<VmStatus> vm_list(int n) {
  std::vector<VmStatus> vms(n);
  for (int i = 0; i < n; i++) vms[i].id = "vm-" + std::to_string(i);
  return vms;
}

// A Migration's status as the store gives it back: summary and VMs joined.
Json migration_status(int n) { return {{"phase", "Running"}, {"vms", Json(vm_list(n))}}; }

}  // namespace

TEST_CASE("the status book writes a changed VM alone, beside the Migration's summary",
          "[status_book]") {
  ferry::event::UvEventLoop loop;
  RecordingStore store;
  StatusBook book(loop);
  book.attach(&store);
  ResourceKey m{"Migration", "ns", "m"};
  book.start_migration(m, {{"phase", "Running"}}, vm_list(500));
  book.flush();
  CHECK(store.vm_puts == 500);  // a new run: every VM
  REQUIRE(store.statuses.count(m.to_string()));
  CHECK_FALSE(store.statuses[m.to_string()].contains("vms"));
  CHECK(store.statuses[m.to_string()]["vmCount"] == 500);

  store.vm_puts = 0;
  store.status_puts = 0;
  VmStatus* vm = book.vm(m, "vm-42");
  REQUIRE(vm);
  vm->phase = "Started";
  CHECK(book.vm(m, "no-such-vm") == nullptr);
  book.flush();
  CHECK(store.vm_puts == 1);
  CHECK(store.vm_writes[{m.to_string(), 42}]["phase"] == "Started");
  CHECK(store.status_puts == 1);

  // Nothing marked, nothing written.
  book.flush();
  CHECK(store.vm_puts == 1);
  CHECK(store.status_puts == 1);

  // A plain status: written whole, once per flush however often it is saved.
  ResourceKey p{"Plan", "ns", "p"};
  book[p] = {{"phase", "Ready"}};
  book.save(p);
  book.save(p);
  book.flush();
  CHECK(store.statuses[p.to_string()]["phase"] == "Ready");
  CHECK(store.status_puts == 2);

  book.erase(m);
  CHECK(store.erased[m.to_string()] == 500);
  CHECK(book.find(m) == book.end());
  CHECK(book.vm(m, "vm-1") == nullptr);
}

TEST_CASE("a stored status of the wrong shape is refused and nothing of it kept", "[status_book]") {
  ferry::event::UvEventLoop loop;
  StatusBook book(loop);
  ResourceKey m{"Migration", "ns", "m"};
  CHECK_FALSE(book.load(m, Json::array()).ok());
  CHECK_FALSE(book.load(m, Json{{"phase", "Running"}, {"vms", "many"}}).ok());
  CHECK(book.count(m) == 0);
  REQUIRE(book.load(m, migration_status(3)).ok());
  REQUIRE(book.vm(m, "vm-2"));
  CHECK(book.vm(m, "vm-2")->id == "vm-2");
  CHECK(book.vms(m).size() == 3);
  // The API's view joins them again.
  CHECK(book.document(m)["vms"].size() == 3);
  CHECK(book.document(m)["vms"][2]["id"] == "vm-2");
  // A VM whose fields have the wrong types is kept, Failed, saying why; the
  // rest of the Migration loads, and the complaint is told.
  Json bad = migration_status(2);
  bad["vms"][1]["disks"] = "none";
  bad["vms"][1]["name"] = "db";
  std::vector<std::string> told;
  ResourceKey bk{"Migration", "ns", "bad"};
  REQUIRE(book.load(bk, bad, [&](const std::string& w) { told.push_back(w); }).ok());
  REQUIRE(book.vms(bk).size() == 2);
  CHECK(book.vms(bk)[0].phase == "Pending");
  CHECK(book.vms(bk)[1].phase == "Failed");
  CHECK(book.vms(bk)[1].name == "db");
  CHECK(book.vm(bk, "vm-1") != nullptr);
  REQUIRE(told.size() == 1);
  CHECK_THAT(told[0], Catch::Contains("vms[1]") && Catch::Contains("kept as Failed"));
  // A Migration that never ran has no VMs, and that is not an error.
  CHECK(book.load(ResourceKey{"Migration", "ns", "new"}, Json{{"phase", "Not ready"}}).ok());
  ResourceKey p{"Plan", "ns", "p"};
  CHECK_FALSE(book.load(p, "text").ok());
  CHECK(book.load(p, Json::object()).ok());
  // drop forgets in memory only.
  RecordingStore store;
  book.attach(&store);
  book.drop(m);
  CHECK(book.count(m) == 0);
  CHECK(store.erased.empty());
}
