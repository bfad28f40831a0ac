#include "tools/ferryctl/ferryctl.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

#include "common/base/args.h"
#include "common/base/clock.h"
#include "common/bus/nats_bus.h"
#include "common/model/resource.h"
#include "common/model/validate.h"
#include "common/protocol/subjects.h"

namespace ferry::ferryctl {
namespace {

using model::Json;

struct Args {
  std::vector<std::string> pos;
  std::vector<std::string> files;
  std::vector<std::string> vms;
  std::string ns;
  std::string output = "table";
  std::string nats =
      std::getenv("FERRY_NATS_URL") ? std::getenv("FERRY_NATS_URL") : "nats://127.0.0.1:4222";
  std::string provider;
  int timeout = 3600;
  bool all_namespaces = false;
  bool refresh = false;
  std::vector<std::string> nodes;
  std::string out;
  std::string plan;
  std::string at;
};

const char* kUsage =
    "usage: ferryctl [--nats URL] COMMAND ...\n"
    "  validate -f FILE|DIR                 check manifests offline\n"
    "  apply -f FILE|DIR                    create or update resources\n"
    "  get plans|migrations|providers|hosts|networkmaps|storagemaps|hooks|secrets [NAME]\n"
    "  get migplans|migmigrations [NAME]   storage migration between classes (local mode)\n"
    "  get vms --provider NAME [--refresh]  the provider's VM inventory (--refresh: reload it "
    "now)\n"
    "  describe plan|migration|provider|migplan|migmigration NAME\n"
    "  delete KIND NAME\n"
    "  cancel migration NAME [--vm VM ...]  cancel VMs (all when no --vm)\n"
    "  wait migration NAME [--timeout S]    show progress until it ends; exit 0 if it succeeded\n"
    "  retry migration NAME --vm VM         run a failed guest conversion again (volumes kept)\n"
    "  cutover migration NAME [--at TIME] [--vm VM]  warm: cut over now or at an RFC 3339 time\n"
    "  status [-o json]                     agents seen by the coordinator\n"
    "  nats-config --node N ... --out DIR   NATS users and permissions (one user per agent)\n"
    "  must-gather [--plan P] [--vm V] [--out FILE.tar.gz]  resources, statuses, logs, metrics\n"
    "options: -n NAMESPACE (default openshift-mtv), -A (all namespaces), -o table|yaml|json\n";

int usage_error(const std::string& msg) {
  std::cerr << "ferryctl: " << msg << "\n" << kUsage;
  return 2;
}

Result<Json> call(const Args& a, const std::string& verb, const Json& req,
                  std::chrono::seconds timeout = std::chrono::seconds(120)) {
  bus::ConnectOptions o;
  o.url = a.nats;
  o.name = "ferryctl";
  bus::options_from_env(o);
  o.url = a.nats;
  o.timeout = std::chrono::milliseconds(3000);
  o.inbox_prefix = "_INBOX_ferryctl";  // its NATS user may only read its own replies
  auto bus = bus::CnatsBus::connect(o);
  if (!bus.ok()) return bus.error();
  auto rep = (*bus)->request(subjects::api(verb), req.dump(), timeout);
  if (!rep.ok()) {
    if (rep.error().code == ErrorCode::kUnavailable)
      return Error(ErrorCode::kUnavailable, "the coordinator is not answering on " + a.nats);
    return rep.error();
  }
  Json j = Json::parse(*rep, nullptr, false);
  if (j.is_discarded()) return Error(ErrorCode::kInternal, "coordinator sent a non-JSON reply");
  // A reply over NATS' payload limit comes in parts: fetch each, in order.
  if (j.is_object() && j.contains("replyId") && j["parts"].is_number_unsigned()) {
    std::string whole;
    for (size_t i = 0; i < j["parts"].get<size_t>(); i++) {
      Json pr = {{"replyId", j["replyId"]}, {"part", i}};
      auto part = (*bus)->request(subjects::api("part"), pr.dump(), timeout);
      if (!part.ok()) return part.error();
      whole += *part;
    }
    j = Json::parse(whole, nullptr, false);
    if (j.is_discarded()) return Error(ErrorCode::kInternal, "coordinator sent a non-JSON reply");
  }
  return j;
}

// Prints the coordinator's error reply; returns the exit code.
int print_failure(const Json& rep) {
  // `errors` lists each problem of a refused apply; `error` joins them (or is the only one).
  if (rep.contains("errors") && rep["errors"].is_array() && !rep["errors"].empty())
    for (const auto& e : rep["errors"]) std::cerr << "error: " << e.get<std::string>() << "\n";
  else if (rep.contains("error"))
    std::cerr << "error: " << rep["error"].get<std::string>() << "\n";
  if (rep.contains("warnings"))
    for (const auto& w : rep["warnings"]) std::cerr << w.get<std::string>() << "\n";
  return 1;
}

std::string ns_of(const Json& doc) { return doc["metadata"].value("namespace", ""); }

std::string condition_summary(const Json& status) {
  std::string ready = "False", crit;
  for (const auto& c : status.value("conditions", Json::array())) {
    if (c.value("type", "") == "Ready") ready = "True";
    if (c.value("category", "") == "Critical")
      crit += (crit.empty() ? "" : ",") + c.value("type", "");
  }
  return crit.empty() ? ready : ready + " (" + crit + ")";
}

std::string human_bytes(double b) {
  const char* u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (b >= 1024 && i < 4) {
    b /= 1024;
    i++;
  }
  std::ostringstream o;
  o << std::fixed << std::setprecision(i ? 1 : 0) << b << " " << u[i];
  return o.str();
}

double parse_time(const std::string& s) {
  double t = 0;
  return model::parse_rfc3339(s, &t) ? t : 0;
}

}  // namespace

std::string elapsed(const Json& obj) {
  std::string st = obj.value("started", "");
  if (st.empty()) return "";
  double start = parse_time(st);
  double end = obj.contains("completed") ? parse_time(obj.value("completed", ""))
                                         : static_cast<double>(std::time(nullptr));
  int s = static_cast<int>(end - start);
  std::ostringstream o;
  if (s >= 3600) o << s / 3600 << "h";
  if (s >= 60) o << (s % 3600) / 60 << "m";
  o << s % 60 << "s";
  return o.str();
}

namespace {

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); i++) {
      if (w.size() <= i) w.push_back(0);
      w[i] = std::max(w[i], r[i].size());
    }
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); i++)
      std::cout << r[i] << (i + 1 < r.size() ? std::string(w[i] - r[i].size() + 3, ' ') : "");
    std::cout << "\n";
  }
}

void print_docs(const Args& a, const Json& items) {
  if (a.output == "json") {
    std::cout << (items.size() == 1 && a.pos.size() > 2 ? items[0] : Json{{"items", items}}).dump(2)
              << "\n";
    return;
  }
  for (size_t i = 0; i < items.size(); i++) {
    if (i) std::cout << "---\n";
    std::cout << model::to_yaml(items[i]);
  }
}

int cmd_validate(const Args& a) {
  if (a.files.empty()) return usage_error("validate needs -f FILE|DIR");
  int errors = 0, resources = 0;
  for (const auto& f : a.files) {
    auto files = model::read_manifest_files(f);
    if (!files.ok()) {
      std::cerr << "error: " << files.error().message << "\n";
      errors++;
      continue;
    }
    for (const auto& [name, text] : *files) {
      auto dr = model::decode_documents(text, name);
      for (const auto& e : dr.errors) {
        std::cerr << (e.warning ? "" : "error: ") << e.to_string() << "\n";
        errors += !e.warning;
      }
      resources += static_cast<int>(dr.resources.size());
    }
  }
  if (errors) {
    std::cerr << errors << " error(s)\n";
    return 1;
  }
  std::cout << resources << " resource(s) valid\n";
  return 0;
}

int cmd_apply(const Args& a) {
  if (a.files.empty()) return usage_error("apply needs -f FILE|DIR");
  Json files = Json::array();
  for (const auto& f : a.files) {
    auto fs = model::read_manifest_files(f);
    if (!fs.ok()) {
      std::cerr << "error: " << fs.error().message << "\n";
      return 1;
    }
    for (const auto& [name, text] : *fs) files.push_back({{"name", name}, {"text", text}});
  }
  auto rep = call(a, "apply", {{"files", files}});
  if (!rep.ok()) {
    std::cerr << "error: " << rep.error().message << "\n";
    return 1;
  }
  if (!rep->value("ok", false)) return print_failure(*rep);
  for (const auto& r : (*rep)["applied"])
    std::cout << r.value("resource", "") << " " << r.value("result", "") << "\n";
  for (const auto& w : rep->value("warnings", Json::array()))
    std::cerr << w.get<std::string>() << "\n";
  return 0;
}

Result<Json> get_items(const Args& a, const std::string& kind, const std::string& name) {
  Json req = {{"kind", kind}};
  if (!a.all_namespaces) req["namespace"] = a.ns.empty() ? model::kDefaultNamespace : a.ns;
  if (!name.empty()) req["name"] = name;
  auto rep = call(a, "get", req);
  if (!rep.ok()) return rep.error();
  if (!rep->value("ok", false)) return Error(ErrorCode::kNotFound, rep->value("error", "failed"));
  return (*rep)["items"];
}

int cmd_get_vms(const Args& a) {
  Json req;
  if (!a.provider.empty()) req["provider"] = a.provider;
  if (a.refresh) req["refresh"] = true;
  if (!a.all_namespaces) req["namespace"] = a.ns.empty() ? model::kDefaultNamespace : a.ns;
  auto rep = call(a, "inventory", req);
  if (!rep.ok() || !rep->value("ok", false)) {
    std::cerr << "error: " << (rep.ok() ? rep->value("error", "") : rep.error().message) << "\n";
    return 1;
  }
  if (a.output != "table") {
    print_docs(a, (*rep)["items"]);
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"PROVIDER", "ID", "NAME", "POWER", "CPUS", "MEMORY", "DISKS", "FIRMWARE", "CBT"}};
  for (const auto& p : (*rep)["items"])
    for (const auto& vm : p["inventory"]["vms"]) {
      uint64_t total = 0;
      for (const auto& d : vm["disks"]) total += d.value("capacity", uint64_t{0});
      rows.push_back({p.value("provider", "").substr(9), vm.value("id", ""), vm.value("name", ""),
                      vm.value("powerState", ""), std::to_string(vm.value("cpus", 0)),
                      std::to_string(vm.value("memoryMB", 0)) + "Mi",
                      std::to_string(vm["disks"].size()) + " (" +
                          human_bytes(static_cast<double>(total)) + ")",
                      vm.value("firmware", ""),
                      vm.value("changeTrackingEnabled", false) ? "on" : "off"});
    }
  print_table(rows);
  return 0;
}

int cmd_get(const Args& a) {
  if (a.pos.size() < 2) return usage_error("get needs a resource type");
  std::string type = a.pos[1];
  if (type == "vms" || type == "vm") return cmd_get_vms(a);
  std::string kind = model::kind_from_user(type);
  if (kind.empty()) return usage_error("unknown resource type \"" + type + "\"");
  auto items = get_items(a, kind, a.pos.size() > 2 ? a.pos[2] : "");
  if (!items.ok()) {
    std::cerr << "error: " << items.error().message << "\n";
    return 1;
  }
  if (a.output != "table") {
    print_docs(a, *items);
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  if (kind == "Plan")
    rows.push_back({"NAMESPACE", "NAME", "READY", "PHASE", "SOURCE", "TARGET", "VMS", "MIGRATION"});
  else if (kind == "Migration")
    rows.push_back({"NAMESPACE", "NAME", "PLAN", "PHASE", "VMS", "SUCCEEDED", "FAILED", "CANCELED",
                    "ELAPSED"});
  else if (kind == "Provider")
    rows.push_back({"NAMESPACE", "NAME", "TYPE", "URL", "READY", "VMS"});
  else if (kind == "MigPlan")
    rows.push_back({"NAMESPACE", "NAME", "READY", "NAMESPACES", "VOLUMES"});
  else if (kind == "MigMigration")
    rows.push_back({"NAMESPACE", "NAME", "PLAN", "STAGE", "ROLLBACK", "ITINERARY", "PHASE"});
  else
    rows.push_back({"NAMESPACE", "NAME"});
  for (const auto& d : *items) {
    const Json& st = d.value("status", Json::object());
    const Json& spec = d.value("spec", Json::object());
    std::string name = d["metadata"].value("name", "");
    if (kind == "Plan") {
      rows.push_back(
          {ns_of(d), name, condition_summary(st), st.value("phase", ""),
           spec["provider"]["source"].value("name", ""), spec.value("targetNamespace", ""),
           std::to_string(spec.value("vms", Json::array()).size()), st.value("migration", "")});
    } else if (kind == "Migration") {
      int ok = 0, failed = 0, canceled = 0;
      for (const auto& vm : st.value("vms", Json::array())) {
        ok += vm.value("phase", "") == "Completed";
        failed += vm.value("phase", "") == "Failed";
        canceled += vm.value("phase", "") == "Canceled";
      }
      rows.push_back({ns_of(d), name, spec["plan"].value("name", ""), st.value("phase", ""),
                      std::to_string(st.value("vms", Json::array()).size()), std::to_string(ok),
                      std::to_string(failed), std::to_string(canceled), elapsed(st)});
    } else if (kind == "MigPlan") {
      std::string nss;
      for (const auto& n : spec.value("namespaces", Json::array()))
        if (n.is_string()) nss += (nss.empty() ? "" : ",") + n.get<std::string>();
      rows.push_back({ns_of(d), name, condition_summary(st), nss,
                      std::to_string(spec.value("persistentVolumes", Json::array()).size())});
    } else if (kind == "MigMigration") {
      auto flag = [&](const char* f) {
        return spec.value(f, Json()).is_boolean() && spec[f].get<bool>() ? "true" : "false";
      };
      rows.push_back({ns_of(d), name, spec.value("migPlanRef", Json::object()).value("name", ""),
                      flag("stage"), flag("rollback"), st.value("itinerary", ""),
                      st.value("phase", "")});
    } else if (kind == "Provider") {
      rows.push_back({ns_of(d), name, spec.value("type", ""), spec.value("url", ""),
                      condition_summary(st),
                      st.contains("vmCount") ? std::to_string(st.value("vmCount", 0)) : ""});
    } else {
      rows.push_back({ns_of(d), name});
    }
  }
  print_table(rows);
  return 0;
}

// Warm migration: precopies so far, the next one, the predicted cutover downtime.
void print_warm(const Json& w) {
  const Json& pre = w.value("precopies", Json::array());
  std::cout << "    Warm:      " << pre.size() << " cop" << (pre.size() == 1 ? "y" : "ies")
            << " done, stage " << w.value("stage", "");
  if (w.contains("snapshot"))
    std::cout << ", snapshot " << w["snapshot"].value("name", "") << " ("
              << w["snapshot"].value("id", "") << ")";
  std::cout << "\n";
  for (const auto& c : pre)
    std::cout << "      #" << c.value("snapshot", 0) << " " << std::left << std::setw(8)
              << c.value("stage", "") << std::right << human_bytes(c.value("changedBytes", 0.0))
              << " changed, " << human_bytes(c.value("bytesRead", 0.0)) << " read in " << std::fixed
              << std::setprecision(1) << c.value("copySeconds", 0.0) << "s"
              << (c.value("full", false) ? " (full copy)" : "") << "\n";
  if (w.contains("nextPrecopyAt") && !w.contains("cutoverStartedAt")) {
    std::cout << "    Next precopy: " << iso_time(w.value("nextPrecopyAt", 0.0)) << "\n";
  }
  const Json pd = w.value("predictedDowntime", Json::object());
  if (pd.value("available", false)) {
    std::cout << "    Predicted downtime: " << std::fixed << std::setprecision(1)
              << pd.value("seconds", 0.0) << "s if cut over now (final delta ~"
              << human_bytes(pd.value("expectedBytes", 0.0)) << ", guest changes "
              << human_bytes(pd.value("changeRateBytesPerSecond", 0.0)) << "/s, copy "
              << human_bytes(pd.value("copyRateBytesPerSecond", 0.0)) << "/s; plus "
              << pd.value("excludes", "") << ")";
    if (pd.contains("maxDowntimeSeconds"))
      std::cout << "; maxDowntime " << pd.value("maxDowntimeSeconds", 0.0) << "s";
    std::cout << "\n";
  } else if (!pd.empty()) {
    std::cout << "    Predicted downtime: not yet (" << pd.value("reason", "") << ")\n";
  }
  if (w.contains("cutoverReason"))
    std::cout << "    Cutover:   " << w.value("cutoverReason", "") << "\n";
  if (w.contains("downtime"))
    std::cout << "    Downtime:  " << std::fixed << std::setprecision(1)
              << w["downtime"].value("copySeconds", 0.0)
              << "s from source power-off to the end of the final copy\n";
  if (w.value("failures", 0) > 0)
    std::cout << "    Failures:  " << w.value("failures", 0)
              << " in a row, last: " << w.value("lastError", "") << "\n";
  for (const auto& x : w.value("warnings", Json::array()))
    std::cout << "    Warning:   " << x.get<std::string>() << "\n";
  if (w.contains("snapshotCleanup"))
    std::cout << "    Snapshot cleanup: " << w.value("snapshotCleanup", "") << "\n";
  std::cout << std::defaultfloat;
}

void print_vm_pipeline(const Json& vm) {
  std::cout << "  VM " << vm.value("name", "") << " (" << vm.value("id", "") << ") -> "
            << vm.value("targetName", "") << "\n";
  std::cout << "    Phase:     " << vm.value("phase", "") << "   Elapsed: " << elapsed(vm) << "\n";
  if (vm.contains("node")) std::cout << "    Node:      " << vm.value("node", "") << "\n";
  if (vm.contains("error"))
    for (const auto& r : vm["error"]["reasons"])
      std::cout << "    Error:     [" << vm["error"].value("step", "") << "] "
                << r.get<std::string>() << "\n";
  std::cout << "    Pipeline:\n";
  for (const auto& s : vm.value("pipeline", Json::array())) {
    std::cout << "      " << std::left << std::setw(24) << s.value("name", "") << std::setw(11)
              << s.value("phase", "") << std::setw(9) << elapsed(s);
    if (s.contains("progress"))
      std::cout << s["progress"].value("completed", 0) << "/" << s["progress"].value("total", 0)
                << " MB";
    if (s.contains("reason")) std::cout << s.value("reason", "");
    if (s.contains("message")) std::cout << s.value("message", "");
    std::cout << std::right << "\n";
  }
  for (const auto& d : vm.value("disks", Json::array())) {
    double done = d.value("bytesDone", 0.0), total = d.value("capacity", 0.0);
    std::cout << "      disk " << d.value("file", "") << " -> " << d.value("volume", "") << "  "
              << d.value("state", "") << "  " << human_bytes(done) << "/" << human_bytes(total);
    if (d.value("state", "") == "Running")
      std::cout << "  " << human_bytes(d.value("rate", 0.0)) << "/s";
    if (d.contains("path")) std::cout << "  " << d.value("path", "");
    std::cout << "\n";
  }
  if (vm.contains("inspection") && vm["inspection"].contains("report")) {
    const Json& r = vm["inspection"]["report"];
    std::cout << "    Preflight: ";
    if (r.value("foundOS", false))
      std::cout << r.value("product", "") << " (" << r.value("os", "") << " "
                << r.value("distro", "") << " " << r.value("version", "") << ")";
    else
      std::cout << "no operating system found";
    for (const auto& c : r.value("concerns", Json::array()))
      std::cout << "; " << c.get<std::string>();
    std::cout << "\n";
  }
  if (vm.contains("conversion") && vm["conversion"].contains("report")) {
    const Json& r = vm["conversion"]["report"];
    std::cout << "    Guest:     " << r.value("os", "") << " " << r.value("distro", "") << " "
              << r.value("version", "") << " (" << r.value("firmware", "") << "), converted in "
              << static_cast<int>(r.value("seconds", 0.0)) << "s, virtio disk "
              << (r.value("virtioDisk", false) ? "yes" : "no") << ", virtio net "
              << (r.value("virtioNet", false) ? "yes" : "no") << "\n";
    for (const auto& w : r.value("warnings", Json::array()))
      std::cout << "    Warning:   " << w.get<std::string>() << "\n";
  }
  if (vm.contains("warm")) print_warm(vm["warm"]);
  if (vm.contains("vmManifestPath"))
    std::cout << "    VirtualMachine: " << vm.value("vmManifestPath", "") << "\n";
}

int cmd_describe(const Args& a) {
  if (a.pos.size() < 3) return usage_error("describe needs a resource type and a name");
  std::string kind = model::kind_from_user(a.pos[1]);
  if (kind.empty()) return usage_error("unknown resource type \"" + a.pos[1] + "\"");
  auto items = get_items(a, kind, a.pos[2]);
  if (!items.ok()) {
    std::cerr << "error: " << items.error().message << "\n";
    return 1;
  }
  const Json& d = (*items)[0];
  const Json& st = d.value("status", Json::object());
  std::cout << "Name:       " << d["metadata"].value("name", "") << "\nNamespace:  " << ns_of(d)
            << "\nKind:       " << kind << "\n";
  if (st.contains("phase")) std::cout << "Phase:      " << st.value("phase", "") << "\n";
  if (st.contains("conditions")) {
    std::cout << "Conditions:\n";
    for (const auto& c : st["conditions"])
      std::cout << "  " << std::left << std::setw(28) << c.value("type", "") << std::setw(10)
                << c.value("category", "") << std::right << c.value("message", "") << "\n";
  }
  Json mig = kind == "Migration" ? d : Json();
  if (kind == "Plan" && st.contains("migration")) {
    std::string m = st.value("migration", "");
    auto mi = get_items(a, "Migration", m.substr(m.find('/') + 1));
    if (mi.ok() && !mi->empty()) mig = (*mi)[0];
  }
  if (!mig.is_null()) {
    const Json& ms = mig.value("status", Json::object());
    std::cout << "Migration:  " << mig["metadata"].value("name", "") << " ("
              << ms.value("phase", "") << ", elapsed " << elapsed(ms) << ")\nVMs:\n";
    for (const auto& vm : ms.value("vms", Json::array())) print_vm_pipeline(vm);
  }
  return 0;
}

int cmd_delete(const Args& a) {
  if (a.pos.size() < 3) return usage_error("delete needs a resource type and a name");
  auto rep = call(a, "delete",
                  {{"kind", a.pos[1]},
                   {"name", a.pos[2]},
                   {"namespace", a.ns.empty() ? model::kDefaultNamespace : a.ns}});
  if (!rep.ok()) {
    std::cerr << "error: " << rep.error().message << "\n";
    return 1;
  }
  if (!rep->value("ok", false)) return print_failure(*rep);
  std::cout << rep->value("deleted", "") << " deleted\n";
  return 0;
}

// A verb on one Migration (cancel, retry, cutover): sends `req` plus its name
// and namespace, prints "VM <name><done>" for each VM listed under `list`.
int migration_verb(const Args& a, const std::string& verb, Json req, const char* list,
                   const std::string& done) {
  req["name"] = a.pos[2];
  req["namespace"] = a.ns.empty() ? model::kDefaultNamespace : a.ns;
  auto rep = call(a, verb, req);
  if (!rep.ok()) {
    std::cerr << "error: " << rep.error().message << "\n";
    return 1;
  }
  if (!rep->value("ok", false)) return print_failure(*rep);
  for (const auto& v : (*rep)[list]) std::cout << "VM " << v.get<std::string>() << done << "\n";
  return 0;
}

int cmd_cancel(const Args& a) {
  if (a.pos.size() < 3 || model::kind_from_user(a.pos[1]) != "Migration")
    return usage_error("usage: cancel migration NAME [--vm VM ...]");
  return migration_verb(a, "cancel", {{"vms", a.vms}}, "canceled", " canceled");
}

int cmd_retry(const Args& a) {
  if (a.pos.size() < 3 || model::kind_from_user(a.pos[1]) != "Migration" || a.vms.size() != 1)
    return usage_error("usage: retry migration NAME --vm VM");
  return migration_verb(a, "retry", {{"vm", a.vms[0]}}, "retried", ": conversion restarted");
}

int cmd_cutover(const Args& a) {
  if (a.pos.size() < 3 || model::kind_from_user(a.pos[1]) != "Migration" || a.vms.size() > 1)
    return usage_error("usage: cutover migration NAME [--at RFC3339-TIME] [--vm VM]");
  Json req = {{"at", a.at}};
  if (!a.vms.empty()) req["vm"] = a.vms[0];
  return migration_verb(a, "cutover", req, "vms",
                        ": cutover " + (a.at.empty() ? std::string("now") : "at " + a.at));
}

int cmd_wait(const Args& a) {
  if (a.pos.size() < 3 || model::kind_from_user(a.pos[1]) != "Migration")
    return usage_error("usage: wait migration NAME [--timeout S]");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(a.timeout);
  bool tty = isatty(1);
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    auto items = get_items(a, "Migration", a.pos[2]);
    if (!items.ok()) {
      std::cerr << "error: " << items.error().message << "\n";
      return 1;
    }
    const Json& st = (*items)[0].value("status", Json::object());
    std::ostringstream line;
    line << "migration " << a.pos[2] << ": " << st.value("phase", "");
    for (const auto& vm : st.value("vms", Json::array())) {
      double done = 0, total = 0, rate = 0;
      for (const auto& d : vm.value("disks", Json::array())) {
        done += d.value("bytesDone", 0.0);
        total += d.value("capacity", 0.0);
        if (d.value("state", "") == "Running") rate += d.value("rate", 0.0);
      }
      line << " | " << vm.value("name", "") << " " << vm.value("phase", "");
      if (total > 0)
        line << " " << std::fixed << std::setprecision(0) << (100.0 * done / total) << "% of "
             << human_bytes(total) << (rate > 0 ? " @ " + human_bytes(rate) + "/s" : "");
    }
    // A terminal gets one live line; a log gets a line only when something but time changed.
    std::string s = line.str();
    if (tty)
      std::cout << "\r\033[K" << s << " (" << elapsed(st) << ")" << std::flush;
    else if (s != last)
      std::cout << s << " (" << elapsed(st) << ")\n" << std::flush;
    last = s;
    std::string phase = st.value("phase", "");
    if (phase == "Succeeded" || phase == "Failed" || phase == "Canceled") {
      if (tty) std::cout << "\n";
      for (const auto& vm : st.value("vms", Json::array()))
        if (vm.contains("error"))
          for (const auto& r : vm["error"]["reasons"])
            std::cerr << "VM " << vm.value("name", "") << " failed at "
                      << vm["error"].value("step", "") << ": " << r.get<std::string>() << "\n";
      return phase == "Succeeded" ? 0 : 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  std::cerr << "\nferryctl: timed out waiting for migration " << a.pos[2] << "\n";
  return 1;
}

std::string random_password() {
  unsigned char buf[18];
  FILE* f = std::fopen("/dev/urandom", "rb");
  if (!f || std::fread(buf, 1, sizeof buf, f) != sizeof buf)
    throw std::runtime_error("no /dev/urandom");
  std::fclose(f);
  static const char* chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  for (unsigned char c : buf) out += chars[c & 63];
  return out;
}

std::string quoted_list(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); i++) s += (i ? ", " : "") + Json(v[i]).dump();
  return s + "]";
}

// Writes a nats-server authorization block (one user per agent, limited to its
// node's subjects) and the matching credentials.
int cmd_nats_config(const Args& a) {
  if (a.nodes.empty()) return usage_error("nats-config needs --node NAME (one per node)");
  if (a.out.empty()) return usage_error("nats-config needs --out DIR");
  Json creds = {
      {"coordinator", {{"user", subjects::kCoordinatorUser}, {"password", random_password()}}},
      {"ferryctl", {{"user", subjects::kCtlUser}, {"password", random_password()}}},
      {"agents", Json::object()}};
  std::ostringstream conf;
  conf << "# Generated by ferryctl nats-config. Include it in nats-server.conf.\n"
       << "authorization {\n  users = [\n";
  conf << "    {user: " << Json(subjects::kCoordinatorUser).dump()
       << ", password: " << creds["coordinator"]["password"].dump()
       << ", permissions: {publish: \">\", subscribe: \">\"}}\n";
  conf << "    {user: " << Json(subjects::kCtlUser).dump()
       << ", password: " << creds["ferryctl"]["password"].dump()
       << ", permissions: {publish: {allow: [\"ferry.api.>\", \"$JS.API.INFO\"]}, subscribe: "
          "{allow: [\"_INBOX_ferryctl.>\"]}}}\n";
  for (const auto& n : a.nodes) {
    std::string pw = random_password();
    creds["agents"][n] = {{"user", subjects::agent_user(n)}, {"password", pw}};
    conf << "    {user: " << Json(subjects::agent_user(n)).dump()
         << ", password: " << Json(pw).dump()
         << ", permissions: {publish: {allow: " << quoted_list(subjects::agent_publish_allow(n))
         << "}, subscribe: {allow: " << quoted_list(subjects::agent_subscribe_allow(n)) << "}}}\n";
  }
  conf << "  ]\n}\n";
  std::string dir = a.out;
  std::ofstream(dir + "/nats-auth.conf") << conf.str();
  std::ofstream cf(dir + "/credentials.json");
  cf << creds.dump(2) << "\n";
  if (!cf) {
    std::cerr << "error: cannot write to " << dir << "\n";
    return 1;
  }
  // The same, as the Kubernetes Secrets manifests/ expects (docs/deploy.md).
  std::string ns = a.ns.empty() ? model::kDefaultNamespace : a.ns;
  auto secret = [&](const std::string& name, const Json& data) {
    return Json{
        {"apiVersion", "v1"},
        {"kind", "Secret"},
        {"metadata",
         {{"name", name}, {"namespace", ns}, {"labels", {{"app.kubernetes.io/part-of", "ferry"}}}}},
        {"type", "Opaque"},
        {"stringData", data}};
  };
  Json agents = Json::object();
  for (const auto& n : a.nodes) agents[n] = creds["agents"][n]["password"];
  std::ofstream sf(dir + "/secrets.yaml");
  sf << model::to_yaml(secret("ferry-nats-auth", {{"nats-auth.conf", conf.str()}})) << "---\n"
     << model::to_yaml(secret("ferry-nats-agents", agents)) << "---\n"
     << model::to_yaml(secret("ferry-nats-credentials",
                              {{"coordinator-user", creds["coordinator"]["user"]},
                               {"coordinator-password", creds["coordinator"]["password"]},
                               {"ferryctl-user", creds["ferryctl"]["user"]},
                               {"ferryctl-password", creds["ferryctl"]["password"]}}));
  std::cout << "wrote " << dir << "/nats-auth.conf, " << dir << "/credentials.json and " << dir
            << "/secrets.yaml\n";
  return 0;
}

std::string shell_quote(const std::string& s) {
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

// One archive with what support needs: resources (secrets redacted), statuses,
// inventories, agents, recent coordinator logs and a metrics snapshot.
int cmd_must_gather(const Args& a) {
  Json req = {{"namespace", a.ns.empty() ? model::kDefaultNamespace : a.ns}};
  if (!a.plan.empty()) req["plan"] = a.plan;
  if (!a.vms.empty()) req["vm"] = a.vms[0];
  auto rep = call(a, "gather", req);
  if (!rep.ok()) {
    std::cerr << "error: " << rep.error().message << "\n";
    return 1;
  }
  if (!rep->value("ok", false)) return print_failure(*rep);
  namespace fs = std::filesystem;
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&now));
  std::string name = std::string("must-gather-") + stamp;
  std::string out = a.out.empty() ? name + ".tar.gz" : a.out;
  fs::path tmp = fs::temp_directory_path() / (name + "-" + std::to_string(getpid()));
  fs::path root = tmp / name;
  auto write = [&](const fs::path& rel, const std::string& text) {
    fs::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << text;
  };
  for (const auto& r : (*rep)["resources"])
    write(fs::path("resources") / r.value("kind", "") /
              (r["metadata"].value("namespace", "") + "." + r["metadata"].value("name", "") +
               ".yaml"),
          model::to_yaml(r));
  for (auto it = (*rep)["inventories"].begin(); it != (*rep)["inventories"].end(); ++it)
    write(fs::path("inventories") / (it.key() + ".json"), it.value().dump(2) + "\n");
  write("agents.yaml", model::to_yaml((*rep)["agents"]));
  std::string logs;
  for (const auto& l : (*rep)["logs"]) logs += l.get<std::string>();
  write("logs/coordinator.log", logs);
  for (auto it = (*rep)["hookLogs"].begin(); it != (*rep)["hookLogs"].end(); ++it)
    write(fs::path("logs/hooks") / (it.key() + ".log"), it.value().get<std::string>());
  write("metrics/coordinator.prom", (*rep)["metrics"].get<std::string>());
  write("gather.yaml", model::to_yaml({{"gatheredAt", (*rep)["gatheredAt"]},
                                       {"plan", a.plan},
                                       {"vm", a.vms.empty() ? "" : a.vms[0]}}));
  std::string cmd = "tar -czf " + shell_quote(fs::absolute(out).string()) + " -C " +
                    shell_quote(tmp.string()) + " " + shell_quote(name);
  int rc = std::system(cmd.c_str());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  if (rc != 0) {
    std::cerr << "error: tar failed writing " << out << "\n";
    return 1;
  }
  std::cout << "wrote " << out << "\n";
  return 0;
}

int cmd_status(const Args& a) {
  auto rep = call(a, "status", Json::object());
  if (!rep.ok()) {
    std::cerr << "error: " << rep.error().message << "\n";
    return 1;
  }
  if (a.output == "json") {
    std::cout << Json{{"agents", (*rep)["agents"]}}.dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"NODE", "LAST SEEN", "TASKS"}};
  for (const auto& ag : (*rep)["agents"]) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(1) << ag.value("lastSeenSecondsAgo", 0.0) << "s ago";
    rows.push_back({ag.value("node", ""), o.str(), std::to_string(ag.value("tasksRunning", 0))});
  }
  print_table(rows);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  ArgReader args(argc, argv);  // --name value and --name=value, as kubectl takes them
  while (args.next()) {
    const std::string s = args.name();
    try {
      if (s == "-f" || s == "--filename")
        a.files.push_back(args.value());
      else if (s == "-n" || s == "--namespace")
        a.ns = args.value();
      else if (s == "-A" || s == "--all-namespaces")
        a.all_namespaces = true;
      else if (s == "-o" || s == "--output")
        a.output = args.value();
      else if (s == "--nats")
        a.nats = args.value();
      else if (s == "--vm")
        a.vms.push_back(args.value());
      else if (s == "--provider")
        a.provider = args.value();
      else if (s == "--node")
        a.nodes.push_back(args.value());
      else if (s == "--out")
        a.out = args.value();
      else if (s == "--plan")
        a.plan = args.value();
      else if (s == "--at")
        a.at = args.value();
      else if (s == "--refresh")
        a.refresh = true;
      else if (s == "--timeout")
        a.timeout = args.number<int>();
      else if (s == "-h" || s == "--help") {
        std::cout << kUsage;
        return 0;
      } else if (!s.empty() && s[0] == '-')
        return usage_error("unknown option " + s);
      else
        a.pos.push_back(s);
    } catch (const ArgError& e) {  // a missing value, or --timeout not a number
      return usage_error(e.what());
    }
  }
  if (a.output != "table" && a.output != "yaml" && a.output != "json")
    return usage_error("-o must be table, yaml or json");
  if (a.pos.empty()) return usage_error("no command");
  const std::string& c = a.pos[0];
  if (c == "validate") return cmd_validate(a);
  if (c == "apply") return cmd_apply(a);
  if (c == "get") return cmd_get(a);
  if (c == "describe") return cmd_describe(a);
  if (c == "delete") return cmd_delete(a);
  if (c == "cancel") return cmd_cancel(a);
  if (c == "wait") return cmd_wait(a);
  if (c == "retry") return cmd_retry(a);
  if (c == "cutover") return cmd_cutover(a);
  if (c == "status") return cmd_status(a);
  if (c == "nats-config") return cmd_nats_config(a);
  if (c == "must-gather") return cmd_must_gather(a);
  return usage_error("unknown command \"" + c + "\"");
}

}  // namespace ferry::ferryctl
