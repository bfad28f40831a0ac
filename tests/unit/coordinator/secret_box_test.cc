#include "coordinator/store/secret_box.h"

#include <sys/stat.h>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace ferry::coordinator::store;
using ferry::model::Json;

namespace {

struct TmpDir {
  std::string path;
  TmpDir() {
    char t[] = "/tmp/ferry-secretbox-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TmpDir() { std::filesystem::remove_all(path); }
};

Json secret(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", {{"name", name}, {"namespace", "openshift-mtv"}}},
          {"stringData", {{"user", "admin"}, {"password", "s3cret-pass"}}}};
}

}  // namespace

TEST_CASE("a Secret is sealed with the coordinator's key and opened only with it") {
  TmpDir d;
  auto box = SecretBox::open(d.path + "/k/secret.key");  // made, with its directory
  REQUIRE(box.ok());
  struct stat st {};
  REQUIRE(::stat((d.path + "/k/secret.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  auto sealed = box->seal(secret("vsphere"));
  REQUIRE(sealed.ok());
  CHECK(sealed->dump().find("s3cret-pass") == std::string::npos);
  CHECK_FALSE(sealed->contains("stringData"));
  CHECK((*sealed)["metadata"]["name"] == "vsphere");  // the key stays readable
  bool was = false;
  auto open = box->unseal(*sealed, &was);
  REQUIRE(open.ok());
  CHECK(was);
  CHECK(*open == secret("vsphere"));
  // The same file again: the same key.
  auto again = SecretBox::open(d.path + "/k/secret.key");
  REQUIRE(again.ok());
  CHECK(again->unseal(*sealed).ok());

  SECTION("another key cannot open it, and says which file it tried") {
    auto other = SecretBox::open(d.path + "/other.key");
    REQUIRE(other.ok());
    auto r = other->unseal(*sealed);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("Secret openshift-mtv/vsphere") != std::string::npos);
    CHECK(r.error().message.find(d.path + "/other.key") != std::string::npos);
  }
  SECTION("a changed value, or one moved to another Secret, is refused") {
    Json tampered = *sealed;
    std::string v = tampered["ferrySealed"];
    v[20] = v[20] == 'A' ? 'B' : 'A';
    tampered["ferrySealed"] = v;
    CHECK_FALSE(box->unseal(tampered).ok());
    Json moved = *sealed;
    moved["metadata"]["name"] = "elsewhere";
    CHECK_FALSE(box->unseal(moved).ok());
    Json junk = *sealed;
    junk["ferrySealed"] = 5;
    CHECK_FALSE(box->unseal(junk).ok());
  }
  SECTION("a Secret stored in clear (an older coordinator) is read as it is") {
    bool sealed_before = true;
    auto r = box->unseal(secret("old"), &sealed_before);
    REQUIRE(r.ok());
    CHECK_FALSE(sealed_before);
    CHECK(*r == secret("old"));
  }
}

TEST_CASE("a key file that is not a key, or readable by others, is refused by name") {
  TmpDir d;
  std::string bad = d.path + "/bad.key";
  std::ofstream(bad) << "not a key\n";
  ::chmod(bad.c_str(), 0600);
  auto r = SecretBox::open(bad);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find(bad) != std::string::npos);
  auto made = SecretBox::open(d.path + "/ok.key");
  REQUIRE(made.ok());
  ::chmod((d.path + "/ok.key").c_str(), 0644);
  auto loose = SecretBox::open(d.path + "/ok.key");
  REQUIRE_FALSE(loose.ok());
  CHECK(loose.error().message.find("chmod 600") != std::string::npos);
}
