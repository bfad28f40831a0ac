// Cold and warm migration from oVirt, end to end: our Engine API stand-in, the real
// ovirt-imageio daemon serving each disk by ticket through qemu-nbd, and the
// real nats-server, coordinator, agent and ferryctl.
#include <catch2/catch.hpp>

#include <set>

#include "common/base/clock.h"
#include "tests/integration/migration/cluster.h"
#include "tests/support/imageio_daemon.h"
#include "tests/support/ovirt_engine_sim.h"

using namespace ferry::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kVm = "3a1d6b0e-0c6f-4d1e-9d0b-000000000001";
constexpr const char* kDisk1 = "9f1c0d6e-1111-4a0b-8c1e-00000000d001";
constexpr const char* kDisk2 = "9f1c0d6e-2222-4a0b-8c1e-00000000d002";
constexpr const char* kHost = "5b0f7c55-aaaa-4b6e-9a7e-0000000000h1";
constexpr const char* kSd = "7c2b9a10-5d3e-4f4e-8a2a-00000000sd01";

// An oVirt source: a VM "rhel-web" with two disks on storage domain "data",
// its NIC on network "ovirtmgmt".
struct OvirtSource {
  // dirty_backend: the first disk also has an incremental-backup export, a
  // qcow2 copy whose dirty bitmap marks what was written after it was added.
  // storage_daemon: both disks live in a qemu-storage-daemon the engine
  // drives over QMP (its checkpoints are dirty bitmaps there); the test writes
  // to them as their guest through guest_nbd.
  // incremental_backup: the disks' backup mode (what warm needs).
  // overrides: stand-in settings (its README), e.g. checkpoint_removal.
  explicit OvirtSource(const TempDir& d, uint64_t disk1_mib = 64, uint64_t disk2_mib = 32,
                       bool dirty_backend = false, bool imageio_by_name = false,
                       bool storage_daemon = false, bool incremental_backup = true,
                       const nlohmann::json& overrides = nlohmann::json::object())
      : dir(d), ca(d), imageio(d, &ca), incremental(incremental_backup) {
    images = {d.file("rhel-web-disk1.raw"), d.file("rhel-web-disk2.raw")};
    sizes = {disk1_mib << 20, disk2_mib << 20};
    make_sparse_image(images[0], sizes[0],
                      {{0, 1 << 20}, {8 << 20, 3 << 20, Fill::kPattern}, {sizes[0] - 4096, 4096}});
    make_sparse_image(images[1], sizes[1], {{1 << 20, 2 << 20, Fill::kRandom, 7}});
    nlohmann::json backends = nlohmann::json::object(), dirty = nlohmann::json::object();
    if (dirty_backend) {
      std::string q = d.file("rhel-web-disk1.qcow2"), img = require_program("qemu-img");
      run_ok(d, {img, "convert", "-f", "raw", "-O", "qcow2", images[0], q}, "to-qcow2");
      run_ok(d, {img, "bitmap", "--add", q, "backup-1"}, "bitmap");
      run_ok(d, {require_program("qemu-io"), "-f", "qcow2", "-c", "write -P 0x5a 4M 256k", q},
             "dirty-write");
      run_ok(d, {img, "convert", "-f", "qcow2", "-O", "raw", q, images[0]}, "to-raw");
      std::string sock = d.file("nbd-dirty.sock");
      nbd.push_back(serve(d, "qemu-nbd-dirty", sock, {"-f", "qcow2", "-A", "-B", "backup-1", q}));
      dirty[kDisk1] = "nbd:unix:" + sock;
    }
    const char* ids[] = {kDisk1, kDisk2};
    for (size_t i = 0; i < images.size(); i++) {
      std::string sock = d.file("nbd-" + std::to_string(i) + ".sock");
      nbd.push_back(serve(d, "qemu-nbd-" + std::to_string(i), sock, {"-f", "raw", images[i]}));
      backends[ids[i]] = "nbd:unix:" + sock;
    }
    auto conf = config(backends);
    if (dirty_backend) conf["backup_backends"] = dirty;
    if (storage_daemon) conf["storage_daemon"] = start_storage_daemon(d);
    conf.update(overrides);
    // The engine names the host by a name imageio's certificate does not
    // carry: only the Host resource's ipAddress (manifests(.., host)) reaches it.
    if (imageio_by_name) {
      std::string url = imageio.base_url();
      conf["imageio"]["url"] = "https://localhost" + url.substr(url.rfind(':'));
    }
    engine = std::make_unique<OvirtEngineSim>(d, ca, imageio, conf);
  }

  // A qemu-storage-daemon holding each disk as qcow2 (nodes "disk0",
  // "disk1"), its NBD server with a writable guest export per disk, and the
  // engine's QMP monitor.
  nlohmann::json start_storage_daemon(const TempDir& d) {
    std::string nbd_sock = d.file("qsd-nbd.sock"), qmp = d.file("qsd-qmp.sock");
    std::vector<std::string> argv = {require_program("qemu-storage-daemon")};
    nlohmann::json nodes;
    const char* ids[] = {kDisk1, kDisk2};
    for (size_t i = 0; i < images.size(); i++) {
      std::string n = std::to_string(i);
      std::string q = d.file("rhel-web-disk" + n + "-qsd.qcow2");
      run_ok(d, {require_program("qemu-img"), "convert", "-f", "raw", "-O", "qcow2", images[i], q},
             "qsd-qcow2-" + n);
      argv.insert(argv.end(), {"--blockdev", "driver=file,node-name=file" + n + ",filename=" + q,
                               "--blockdev", "driver=qcow2,node-name=disk" + n + ",file=file" + n});
      nodes[ids[i]] = "disk" + n;
    }
    argv.insert(argv.end(), {"--nbd-server", "addr.type=unix,addr.path=" + nbd_sock});
    for (size_t i = 0; i < images.size(); i++) {
      std::string n = std::to_string(i);
      argv.insert(argv.end(), {"--export", "type=nbd,id=guest-disk" + n + ",node-name=disk" + n +
                                               ",name=guest-disk" + n + ",writable=on"});
      guest_nbds.push_back("nbd+unix:///guest-disk" + n + "?socket=" + nbd_sock);
    }
    argv.insert(argv.end(), {"--chardev", "socket,path=" + qmp + ",server=on,wait=off,id=qmp0",
                             "--monitor", "chardev=qmp0"});
    SubprocessOptions o;
    o.log_dir = d.path();
    o.name = "qemu-storage-daemon";
    nbd.push_back(std::make_unique<Subprocess>(argv, o));
    if (!eventually(10s, [&] { return path_exists(nbd_sock) && path_exists(qmp); }))
      throw std::runtime_error("qemu-storage-daemon did not start: " + nbd.back()->stderr_text());
    guest_nbd = guest_nbds[0];
    return {{"qmp_socket", qmp}, {"nbd_socket", nbd_sock}, {"nodes", nodes}};
  }

  // Storage daemon mode: the guest writes `length` bytes of `pattern` at `offset` of disk `i`.
  void guest_write(size_t i, uint64_t offset, uint64_t length, int pattern) const {
    run_ok(dir,
           {require_program("qemu-io"), "-f", "raw", "-c",
            "write -P " + std::to_string(pattern) + " " + std::to_string(offset) + " " +
                std::to_string(length),
            guest_nbds.at(i)},
           "guest-write");
  }
  // Storage daemon mode: disk `i` as the guest sees it now, in a raw file.
  std::string guest_disk(size_t i, const std::string& name) const {
    std::string out = dir.file(name);
    run_ok(
        dir,
        {require_program("qemu-img"), "convert", "-f", "raw", guest_nbds.at(i), "-O", "raw", out},
        "guest-read");
    return out;
  }

  // qemu-nbd, read-only, persistent, for imageio's parallel readers.
  static std::unique_ptr<Subprocess> serve(const TempDir& d, const std::string& name,
                                           const std::string& sock, std::vector<std::string> args) {
    SubprocessOptions o;
    o.log_dir = d.path();
    o.name = name;
    std::vector<std::string> argv = {
        require_program("qemu-nbd"), "-r", "-t", "--shared=8", "-k", sock};
    argv.insert(argv.end(), args.begin(), args.end());
    auto p = std::make_unique<Subprocess>(argv, o);
    if (!eventually(10s, [&] { return path_exists(sock); }))
      throw std::runtime_error(name + " did not start: " + p->stderr_text());
    return p;
  }

  nlohmann::json config(const nlohmann::json& backends) const {
    auto disk = [&](const char* id, const char* alias, uint64_t size) {
      return nlohmann::json{{"id", id},
                            {"name", alias},
                            {"alias", alias},
                            {"provisioned_size", std::to_string(size)},
                            {"actual_size", std::to_string(size / 4)},
                            {"total_size", std::to_string(size / 4)},
                            {"status", "ok"},
                            {"storage_type", "image"},
                            {"format", "cow"},
                            {"backup", incremental ? "incremental" : "none"},
                            {"sparse", "true"},
                            {"shareable", "false"},
                            {"content_type", "data"},
                            {"storage_domains", {{"storage_domain", {{{"id", kSd}}}}}}};
    };
    auto attachment = [](const char* id, bool boot, const char* iface) {
      return nlohmann::json{{"id", id},
                            {"bootable", boot ? "true" : "false"},
                            {"interface", iface},
                            {"active", "true"},
                            {"pass_discard", "false"},
                            {"uses_scsi_reservation", "false"},
                            {"disk", {{"id", id}}}};
    };
    return {
        {"users", {{"admin@internal", "engine-pass"}}},
        {"token_lifetime_seconds", 3600},
        {"power_delay_seconds", 0.5},
        {"transfer_delay_seconds", 0.3},
        {"backends", backends},
        {"objects",
         {{"datacenters", {{{"id", "dc-0001"}, {"name", "Default"}}}},
          {"clusters",
           {{{"id", "cl-0001"}, {"name", "Default"}, {"data_center", {{"id", "dc-0001"}}}}}},
          {"hosts",
           {{{"id", kHost},
             {"name", "host1"},
             {"address", "127.0.0.1"},
             {"status", "up"},
             {"cluster", {{"id", "cl-0001"}}}}}},
          {"networks",
           {{{"id", "net-0001"}, {"name", "ovirtmgmt"}, {"data_center", {{"id", "dc-0001"}}}}}},
          {"vnicprofiles",
           {{{"id", "prof-0001"}, {"name", "ovirtmgmt"}, {"network", {{"id", "net-0001"}}}}}},
          {"diskprofiles",
           {{{"id", "dp-0001"}, {"name", "data"}, {"storage_domain", {{"id", kSd}}}}}},
          {"storagedomains",
           {{{"id", kSd},
             {"name", "data"},
             {"type", "data"},
             {"storage", {{"type", "nfs"}}},
             {"available", std::to_string(100ull << 30)},
             {"used", std::to_string(10ull << 30)},
             {"data_centers", {{"data_center", {{{"id", "dc-0001"}}}}}}}}},
          {"vms",
           {{{"id", kVm},
             {"name", "rhel-web"},
             {"status", "up"},
             {"cluster", {{"id", "cl-0001"}}},
             {"host", {{"id", kHost}}},
             {"memory", std::to_string(2ull << 30)},
             {"cpu", {{"topology", {{"sockets", "1"}, {"cores", "2"}, {"threads", "1"}}}}},
             {"os", {{"type", "rhel_9x64"}}},
             {"bios", {{"type", "q35_sea_bios"}}},
             {"has_illegal_images", "false"},
             {"disk_attachments",
              {{"disk_attachment",
                {attachment(kDisk1, true, "virtio_scsi"), attachment(kDisk2, false, "virtio")}}}},
             {"nics",
              {{"nic",
                {{{"id", "nic-0001"},
                  {"name", "nic1"},
                  {"interface", "virtio"},
                  {"mac", {{"address", "56:6f:1a:2b:00:01"}}},
                  {"plugged", "true"},
                  {"vnic_profile", {{"id", "prof-0001"}}}}}}}},
             {"cdroms", {{"cdrom", nlohmann::json::array()}}},
             {"snapshots",
              {{"snapshot",
                {{{"id", "snap-active"},
                  {"description", "Active VM"},
                  {"snapshot_type", "active"},
                  {"snapshot_status", "ok"}}}}}},
             {"watchdogs", {{"watchdog", nlohmann::json::array()}}},
             {"host_devices", {{"host_device", nlohmann::json::array()}}}}}},
          {"disks",
           {disk(kDisk1, "rhel-web_Disk1", sizes[0]), disk(kDisk2, "rhel-web_Disk2", sizes[1])}}}}};
  }

  // Secret, Providers, maps and a Plan for rhel-web, in MTV's shapes.
  // host: a Host resource giving the VM's host this migration address.
  std::string manifests(const std::string& plan, const std::string& password = "engine-pass",
                        const std::string& plan_extra = "", const std::string& host = "") const {
    std::string y = R"(apiVersion: v1
kind: Secret
metadata: {name: ovirt-credentials, namespace: openshift-mtv}
stringData:
  user: admin@internal
  password: )" + password +
                    R"(
  cacert: )" + nlohmann::json(read_file(ca.ca_file())).dump() +
                    R"(
---
apiVersion: forklift.konveyor.io/v1beta1
kind: Provider
metadata: {name: rhv, namespace: openshift-mtv}
spec:
  type: ovirt
  url: )" + engine->api_url() +
                    R"(
  secret: {name: ovirt-credentials, namespace: openshift-mtv}
---
apiVersion: forklift.konveyor.io/v1beta1
kind: Provider
metadata: {name: host, namespace: openshift-mtv}
spec: {type: openshift}
---
)" +
                    (host.empty() ? "" : R"(apiVersion: forklift.konveyor.io/v1beta1
kind: Host
metadata: {name: host1, namespace: openshift-mtv}
spec:
  provider: {name: rhv, namespace: openshift-mtv}
  id: )" + std::string(kHost) + R"(
  ipAddress: )" + host + R"(
---
)") + R"(
apiVersion: forklift.konveyor.io/v1beta1
kind: NetworkMap
metadata: {name: rhv-net, namespace: openshift-mtv}
spec:
  provider: {source: {name: rhv}, destination: {name: host}}
  map:
    - source: {name: ovirtmgmt}
      destination: {type: pod}
---
apiVersion: forklift.konveyor.io/v1beta1
kind: StorageMap
metadata: {name: rhv-storage, namespace: openshift-mtv}
spec:
  provider: {source: {name: rhv}, destination: {name: host}}
  map:
    - source: {name: data}
      destination: {storageClass: local}
---
apiVersion: forklift.konveyor.io/v1beta1
kind: Plan
metadata: {name: )" +
                    plan + R"(, namespace: openshift-mtv}
spec:
  provider: {source: {name: rhv}, destination: {name: host}}
  map: {network: {name: rhv-net}, storage: {name: rhv-storage}}
  targetNamespace: target
)" + plan_extra + R"(  vms:
    - name: rhel-web
)";
    std::string path = dir.file("ovirt-" + plan + ".yaml");
    write_file(path, y);
    return path;
  }

  // The stand-in's image transfers (every one it ever made).
  nlohmann::json transfers() const { return engine->state()["transfers"]; }
  std::string vm_state() const {
    Json st = engine->state();
    for (const auto& v : st["vms"])
      if (v["id"] == kVm) return v["status"];
    return "";
  }

  const TempDir& dir;
  TestCa ca;
  ImageioDaemon imageio;
  std::vector<std::string> images;
  std::vector<uint64_t> sizes;
  bool incremental = true;
  std::string guest_nbd;                // with storage_daemon: the first disk, writable
  std::vector<std::string> guest_nbds;  // with storage_daemon: every disk, writable
  std::vector<std::unique_ptr<Subprocess>> nbd;
  std::unique_ptr<OvirtEngineSim> engine;
};

// Starts a coordinator, an agent copying one disk at a time at `rate`
// bytes/s, and Migration "m" of Plan "p"; returns once the first disk has
// `rate` bytes copied (a second of reading).
void start_slow_migration(Cluster& c, const OvirtSource& src, uint64_t rate) {
  c.start_coordinator();
  c.start_agent("node-1", {"--bandwidth", std::to_string(rate), "--max-tasks", "1"});
  REQUIRE(c.ctl({"apply", "-f", src.manifests("p")}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  REQUIRE(eventually(
      60s,
      [&] {
        Json d = vm_status(c, "m").value("disks", Json::array());
        return !d.empty() && d[0].value("bytesDone", uint64_t{0}) > rate;
      },
      200ms));
}

// Migration "m" succeeds, and each volume is its source disk, byte for byte.
void expect_identical_copies(Cluster& c, const OvirtSource& src) {
  std::string phase = wait_migration(c, "m", 240);
  INFO(vm_status(c, "m").dump());
  REQUIRE(phase == "Succeeded");
  Json vm = vm_status(c, "m");
  for (size_t i = 0; i < 2; i++)
    CHECK_FALSE(first_difference(src.images[i], vm["disks"][i]["path"]).has_value());
}

std::multiset<std::string> phases(const nlohmann::json& transfers) {
  std::multiset<std::string> out;
  for (const auto& t : transfers) out.insert(t.value("phase", ""));
  return out;
}

}  // namespace

TEST_CASE("ovirt: a cold migration copies both disks through imageio and closes every transfer",
          "[e2e][ovirt]") {
  Cluster c({});
  OvirtSource src(c.dir(), 64, 32, false, /*imageio_by_name=*/true);
  // The engine holds the first disk for a moment (a snapshot elsewhere, say).
  src.engine->post("/sim/fault", {{"kind", "disk_locked"}, {"disk", kDisk1}, {"times", 2}});
  c.start_coordinator();
  c.start_agent("node-1");
  // Its disks are read over the host's migration network (the Host resource).
  REQUIRE(c.ctl({"apply", "-f", src.manifests("p", "engine-pass", "", "127.0.0.1")}).rc == 0);
  // The inventory in the neutral shape, with Forklift's names.
  auto vms = c.ctl({"get", "vms", "--provider", "rhv", "-o", "json"});
  REQUIRE(vms.rc == 0);
  Json inv = Json::parse(vms.out)["items"][0]["inventory"];
  REQUIRE(inv["vms"].size() == 1);
  CHECK(inv["vms"][0]["name"] == "rhel-web");
  CHECK(inv["vms"][0]["powerState"] == "On");
  CHECK(inv["vms"][0]["disks"][1]["datastore"]["name"] == "data");
  // A change in the engine shows in the inventory without a refresh asked
  // for: the coordinator polls the engine's events (every 10 s).
  src.engine->post(std::string("/sim/disks/") + kDisk2, {{"alias", "rhel-web_data"}});
  CHECK(eventually(
      40s,
      [&] {
        auto r = c.ctl({"get", "vms", "--provider", "rhv", "-o", "json"});
        return r.rc == 0 &&
               Json::parse(r.out)["items"][0]["inventory"]["vms"][0]["disks"][1]["file"] ==
                   "rhel-web_data";
      },
      1s));

  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  REQUIRE(wait_migration(c, "m", 180) == "Succeeded");
  Json vm = vm_status(c, "m");
  REQUIRE(vm["disks"].size() == 2);
  for (size_t i = 0; i < 2; i++) {
    INFO("disk " << i);
    std::string volume = vm["disks"][i]["path"];
    CHECK(file_size(volume) == src.sizes[i]);
    CHECK_FALSE(first_difference(src.images[i], volume).has_value());
    CHECK(allocated_bytes(volume) < src.sizes[i] / 2);  // the holes stayed holes
  }
  // Each disk's transfer is closed once its copy is in (finalized: below).
  CHECK(eventually(10s, [&] {
    Json v = vm_status(c, "m");
    return !v["disks"][0].contains("sourceHandle") && !v["disks"][1].contains("sourceHandle");
  }));
  // Guests from oVirt already run on KVM: no conversion, virtio devices.
  CHECK(pipeline_steps(vm) ==
        std::vector<std::string>{"Initialize=Completed", "DiskAllocation=Completed",
                                 "DiskTransfer=Completed", "ImageConversion=Skipped",
                                 "VirtualMachineCreation=Completed"});
  std::string manifest = read_file(vm["vmManifestPath"]);
  CHECK(manifest.find("bus: virtio") != std::string::npos);
  CHECK(manifest.find("macAddress: 56:6f:1a:2b:00:01") != std::string::npos);
  // Every transfer the engine made was finalized; the source was shut down.
  auto t = src.transfers();
  CHECK(t.size() == 2);
  CHECK(phases(t) == std::multiset<std::string>{"finished_success", "finished_success"});
  CHECK(src.vm_state() == "down");
  bool locked_answered = false;
  Json st = src.engine->state();
  for (const auto& r : st["requests"])
    if (r["path"] == "/ovirt-engine/api/imagetransfers" && r["status"] == 409)
      locked_answered = true;
  CHECK(locked_answered);
}

TEST_CASE("ovirt: an expired ticket gets a new transfer and the copy resumes, and cancel closes it",
          "[e2e][ovirt]") {
  Cluster c({});
  OvirtSource src(c.dir(), 96, 8);
  // 4 MiB/s: long enough to act in the middle of the first disk.
  start_slow_migration(c, src, 4 << 20);
  // The transfer of the first disk, under way.
  std::string first;
  for (const auto& t : src.transfers())
    if (t["disk"] == kDisk1 && t["phase"] == "transferring") first = t["id"];
  REQUIRE(!first.empty());

  SECTION("the engine expires the ticket: a new transfer, the copy goes on") {
    src.engine->post("/sim/expire-transfer/" + first, Json::object());
    expect_identical_copies(c, src);
    // The last transfer is finalized once its copy is in, which may be just
    // after the migration's end.
    CHECK(eventually(10s, [&] { return phases(src.transfers()).count("finished_success") == 2; }));
    auto ph = phases(src.transfers());
    CHECK(src.transfers().size() == 3);  // the expired one, then one per disk
    CHECK(ph.count("transferring") == 0);
  }
  SECTION("cancel cancels the open transfer and powers the VM on again") {
    REQUIRE(c.ctl({"cancel", "migration", "m", "--vm", "rhel-web"}).rc == 0);
    REQUIRE(wait_migration(c, "m", 30) == "Canceled");
    // The transfer open at the cancel is cancelled, not finalized.
    std::string last;
    CHECK(eventually(30s, [&] {
      for (const auto& t : src.transfers()) {
        if (t["id"] == first) last = t["phase"];
        if (t["phase"] == "transferring" || t["phase"] == "initializing") return false;
      }
      return last == "finished_failure" || last == "finished_success";
    }));
    CHECK(last == "finished_failure");  // the engine's end of a cancelled transfer
    CHECK(eventually(30s, [&] { return src.vm_state() == "up"; }));
    CHECK(eventually(10s, [&] { return !vm_status(c, "m")["disks"][0].contains("sourceHandle"); }));
  }
}

TEST_CASE("ovirt: a coordinator killed mid-copy finalizes the transfer its agent kept reading",
          "[e2e][ovirt]") {
  Cluster c({});
  OvirtSource src(c.dir(), 96, 8);
  start_slow_migration(c, src, 8 << 20);
  c.kill_coordinator();
  c.start_coordinator();
  expect_identical_copies(c, src);
  // The open transfer's handle was stored: the new coordinator finalized it.
  CHECK(eventually(20s, [&] {
    return phases(src.transfers()) ==
           std::multiset<std::string>{"finished_success", "finished_success"};
  }));
  CHECK(eventually(10s, [&] {
    Json v = vm_status(c, "m");
    return !v["disks"][0].contains("sourceHandle") && !v["disks"][1].contains("sourceHandle");
  }));
}

TEST_CASE("ovirt: bad credentials and plans name the field and change nothing", "[e2e][ovirt]") {
  Cluster c({});
  OvirtSource src(c.dir(), 16, 16, false, false, false, /*incremental_backup=*/false);
  c.start_coordinator();
  auto bad = c.ctl({"apply", "-f", src.manifests("p", "wrong")});
  CHECK(bad.rc != 0);
  CHECK(bad.err.find("Secret openshift-mtv/ovirt-credentials: user/password:") !=
        std::string::npos);
  CHECK(c.listed("plan") == 0);
  // A warm plan for a VM whose disks are not backed up incrementally.
  auto warm = c.ctl({"apply", "-f", src.manifests("w", "engine-pass", "  warm: true\n")});
  CHECK(warm.rc != 0);
  CHECK(warm.err.find("VMMissingChangedBlockTracking") != std::string::npos);
  CHECK(warm.err.find("VM \"rhel-web\" does not have incremental backup enabled (each disk's "
                      "backup mode: incremental)") != std::string::npos);
  CHECK(c.listed("plan") == 0);
  CHECK(src.transfers().empty());
  CHECK(src.vm_state() == "up");
}

TEST_CASE("ovirt stand-in: the official SDK parses all it serves and downloads a disk through it",
          "[e2e][ovirt]") {
  // ovirtsdk4 speaks XML, Ferry JSON: sdk_check.py compares every object the
  // SDK reads with the JSON answer to the same request, shuts the VM down,
  // downloads a disk with ovirt_imageio.client as the SDK's examples do, takes
  // a full and an incremental backup (the dirty extents, downloaded) and
  // checks the "Disk is locked" fault, cancel, expiry and bad credentials.
  auto check = [](const TempDir& dir, const OvirtSource& src) {
    std::vector<std::string> argv = {
        venv_python(),
        FERRY_SOURCE_DIR "/tests/ovirt-engine-sim/sdk_check.py",
        "--url",
        src.engine->api_url(),
        "--ca",
        src.ca.ca_file(),
        "--user",
        "admin@internal",
        "--password",
        "engine-pass",
        "--vm",
        kVm,
        "--disk",
        kDisk1,
        "--expect",
        src.images[0],
        "--sim-state",
        src.engine->api_url().substr(0, src.engine->api_url().find("/ovirt-engine")) +
            "/sim/state"};
    if (!src.guest_nbd.empty()) argv.insert(argv.end(), {"--guest-nbd", src.guest_nbd});
    std::string out = run_ok(dir, argv, "sdk-check", std::chrono::seconds(180));
    INFO(out);
    CHECK(out.find(" 0 failed") != std::string::npos);
  };
  SECTION("disks on qemu-nbd, a fixed dirty bitmap for backups") {
    TempDir dir("ferry-ovirt-sdk");
    OvirtSource src(dir, 16, 16, /*dirty_backend=*/true);
    check(dir, src);
  }
  SECTION("a disk in qemu-storage-daemon: checkpoints are its dirty bitmaps") {
    // The guest writes between a full and an incremental backup; the dirty
    // extents must be exactly what it wrote, and no bitmap or export is left
    // once the checkpoints are removed.
    TempDir dir("ferry-ovirt-sdk");
    OvirtSource src(dir, 16, 16, false, false, /*storage_daemon=*/true);
    check(dir, src);
  }
}

namespace {

// Waits until VM rhel-web of Migration "m" has finished more than `n` copies
// (the initial one counts) and waits between precopies with at least `gap`
// seconds before the next: a guest write then lands between two backups
// (the stand-in's backups export the live disk; see its README).
Json wait_paused_after(Cluster& c, size_t n, double gap = 2) {
  Json vm;
  bool ok = eventually(
      90s,
      [&] {
        vm = vm_status(c, "m");
        if (vm.value("phase", "") != "CopyingPaused" || !vm.contains("warm") ||
            vm["warm"]["precopies"].size() <= n)
          return false;
        return vm["warm"].value("nextPrecopyAt", 0.0) - ferry::now_seconds() >= gap;
      },
      50ms);
  if (!ok) FAIL("no precopy after #" << n << ": " << vm.dump(1));
  return vm;
}

}  // namespace

TEST_CASE(
    "ovirt: a warm migration copies only what the guest changed, cuts over and leaves no "
    "backup or checkpoint",
    "[e2e][ovirt]") {
  constexpr uint64_t kMiB = 1 << 20;
  Cluster c({});
  OvirtSource src(c.dir(), 64, 32, false, false, /*storage_daemon=*/true);
  c.start_coordinator();
  c.start_agent("node-1");
  REQUIRE(c.ctl({"apply", "-f",
                 src.manifests("p", "engine-pass", "  warm: true\n  precopyInterval: 6s\n")})
              .rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  Json vm = wait_paused_after(c, 0);
  const Json first = vm["warm"]["precopies"][0];
  INFO(first.dump());
  CHECK(first["full"] == true);
  // The initial (full) backup: only what imageio says is data was read.
  CHECK(first["bytesRead"].get<uint64_t>() < 16 * kMiB);

  // Three rounds of guest writes, each followed by an incremental backup
  // whose dirty extents are about what was written: a former hole, an
  // overwrite on both disks, zeros over data.
  struct Write {
    size_t disk;
    uint64_t offset, length;
    int pattern;
  };
  std::vector<std::vector<Write>> rounds = {
      {{0, 40 * kMiB, 2 * kMiB, 0x61}},
      {{0, 1 * kMiB + 4096, 3 * kMiB, 0x71}, {1, 4 * kMiB, 1 * kMiB, 0x33}},
      {{0, 2 * kMiB, 1 * kMiB, 0}}};
  for (size_t i = 0; i < rounds.size(); i++) {
    INFO("round " << i);
    size_t before = vm["warm"]["precopies"].size();
    uint64_t written = 0;
    for (const auto& w : rounds[i]) {
      src.guest_write(w.disk, w.offset, w.length, w.pattern);
      written += w.length;
    }
    vm = wait_paused_after(c, before);
    // The first precopy after the writes found them, and little else (1 MiB
    // verification blocks round each disk's areas out).
    const Json cycle = vm["warm"]["precopies"][before];
    INFO(cycle.dump());
    CHECK(cycle["full"] == false);
    CHECK(cycle["changedBytes"].get<uint64_t>() >= written);
    CHECK(cycle["changedBytes"].get<uint64_t>() <= written + 2 * kMiB * rounds[i].size());
    // What was read over the wire is about what was written, not the disks.
    CHECK(cycle["bytesRead"].get<uint64_t>() <= written + 2 * kMiB * rounds[i].size());
    for (const auto& d : vm["disks"]) {
      REQUIRE(d.contains("copy"));
      CHECK(d["copy"].value("sourceReported", false));
    }
  }
  // Each old checkpoint went as soon as a newer one was the base.
  CHECK(eventually(10s, [&] {
    Json st = src.engine->state();
    return st["checkpoints"][kVm].size() == 1;
  }));

  // A last write, then the cutover: the VM is shut down and the final
  // incremental backup copied.
  src.guest_write(0, 60 * kMiB, 512 * 1024, 0x7a);
  REQUIRE(c.ctl({"cutover", "migration", "m"}).rc == 0);
  REQUIRE(wait_migration(c, "m", 180) == "Succeeded");
  vm = vm_status(c, "m");
  CHECK(vm["warm"]["stage"] == "final");
  CHECK(src.vm_state() == "down");
  for (size_t i = 0; i < 2; i++) {
    INFO("disk " << i);
    std::string want = src.guest_disk(i, "guest-" + std::to_string(i) + ".raw");
    CHECK_FALSE(first_difference(want, vm["disks"][i]["path"]).has_value());
  }
  // Nothing is left on the engine: every backup finalized, every transfer
  // finished, no checkpoint, and in the storage daemon no bitmap or export.
  CHECK(eventually(
      30s, [&] { return vm_status(c, "m")["warm"].value("snapshotCleanup", "") == "Completed"; }));
  Json st = src.engine->state();
  INFO(st.dump(1));
  CHECK(st["backups"].size() >= 5);  // initial, 3 rounds (at least), final
  for (const auto& b : st["backups"]) CHECK(b["phase"] == "succeeded");
  for (const auto& t : st["transfers"]) CHECK(t["phase"] == "finished_success");
  CHECK(st["checkpoints"][kVm].empty());
  CHECK(st["disk_locks"].empty());
  for (const auto& [disk, bitmaps] : st["storage_daemon"]["bitmaps"].items())
    CHECK(bitmaps.empty());
  std::set<std::string> exports;
  for (const auto& e : st["storage_daemon"]["qmp_exports"]) exports.insert(e.get<std::string>());
  CHECK(exports == std::set<std::string>{"guest-disk0", "guest-disk1"});  // the guest's own
}

TEST_CASE(
    "ovirt: a warm migration canceled mid-precopy finalizes its backup and deletes its "
    "checkpoints",
    "[e2e][ovirt]") {
  constexpr uint64_t kMiB = 1 << 20;
  Cluster c({});
  // An early 4.4 engine, which removes only the root checkpoint.
  OvirtSource src(c.dir(), 64, 32, false, false, /*storage_daemon=*/true, true,
                  {{"checkpoint_removal", "root_only"}});
  c.start_coordinator();
  // 1 MiB/s: the first precopy after the initial copy is still being read at the cancel.
  c.start_agent("node-1", {"--bandwidth", std::to_string(1 * kMiB)});
  REQUIRE(c.ctl({"apply", "-f",
                 src.manifests("p", "engine-pass", "  warm: true\n  precopyInterval: 3s\n")})
              .rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  wait_paused_after(c, 0, -60);  // what the copies hold does not matter here
  src.guest_write(0, 20 * kMiB, 8 * kMiB, 0x44);
  // A precopy's incremental backup is open and its transfer under way.
  REQUIRE(eventually(
      60s,
      [&] {
        for (const auto& t : src.transfers())
          if (t.value("dirty", false) && t["phase"] == "transferring") return true;
        return false;
      },
      100ms));
  CHECK_FALSE(src.engine->state()["checkpoints"][kVm].empty());  // what the cancel must remove
  REQUIRE(c.ctl({"cancel", "migration", "m"}).rc == 0);
  REQUIRE(wait_migration(c, "m", 60) == "Canceled");
  CHECK(eventually(
      60s, [&] { return vm_status(c, "m")["warm"].value("snapshotCleanup", "") == "Completed"; }));
  Json st = src.engine->state();
  INFO(st.dump(1));
  REQUIRE(st["backups"].size() >= 2);  // the initial one and the one read at the cancel
  REQUIRE(st["storage_daemon"].contains("bitmaps"));
  for (const auto& b : st["backups"]) CHECK(b["phase"] == "succeeded");
  for (const auto& t : st["transfers"]) CHECK(std::string(t["phase"]).rfind("finished_", 0) == 0);
  CHECK(st["checkpoints"][kVm].empty());
  CHECK(st["disk_locks"].empty());
  for (const auto& [disk, bitmaps] : st["storage_daemon"]["bitmaps"].items())
    CHECK(bitmaps.empty());
  CHECK(src.vm_state() == "up");  // a precopy never stops the source
}
