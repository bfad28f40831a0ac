// kube::load_config: a kubeconfig's current context, inline or file
// credentials, and clear errors (never a crash) for broken files.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "common/kube/client.h"

using ferry::kube::load_config;

namespace {
std::string write_temp(const std::string& text) {
  char path[] = "/tmp/ferry-kubeconfig-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  std::ofstream(path) << text;
  return path;
}
}  // namespace

TEST_CASE("a kubeconfig's current context gives server, CA and client certificate") {
  std::string cert_file = write_temp("CERT-PEM");
  std::string p = write_temp(R"(apiVersion: v1
kind: Config
clusters:
- name: other
  cluster: {server: "https://10.0.0.1:6443"}
- name: dev
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: Q0EtUEVN
users:
- name: admin
  user:
    client-certificate: )" + cert_file +
                             R"(
    client-key-data: S0VZLVBFTQ==
contexts:
- name: dev
  context: {cluster: dev, user: admin, namespace: openshift-mtv}
current-context: dev
)");
  auto c = load_config(p);
  REQUIRE(c.ok());
  CHECK(c->server == "https://127.0.0.1:6443");
  CHECK(c->ca_pem == "CA-PEM");
  CHECK(c->cert_pem == "CERT-PEM");
  CHECK(c->key_pem == "KEY-PEM");
  CHECK(c->ns == "openshift-mtv");
  unlink(p.c_str());
  unlink(cert_file.c_str());
}

TEST_CASE("a broken kubeconfig is an error naming the file and the field") {
  struct Case {
    std::string text, want;
  };
  std::vector<Case> cases = {
      {"- just a list", "not a YAML object"},
      {"current-context: x\ncontexts: 5\n", "current-context: \"x\" is not in contexts"},
      {"current-context: x\ncontexts: [{name: x, context: 7}]\n", "is not in contexts"},
      {"current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: "
       "[{name: c}]\n",
       "\"c\" is not in clusters"},
      {"current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: "
       "[{name: c, cluster: {server: http://plain}}]\n",
       "is not an https:// URL"},
      {"current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: "
       "[{name: c, cluster: {server: 'https://a', certificate-authority-data: '%%%'}}]\n",
       "certificate-authority-data: not base64"},
      {"current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: "
       "[{name: c, cluster: {server: 'https://a'}}]\nusers: [{name: u, user: {client-key: "
       "/nonexistent/key}}]\n",
       "client-key: cannot read /nonexistent/key"},
  };
  for (const auto& tc : cases) {
    std::string p = write_temp(tc.text);
    auto c = load_config(p);
    INFO(tc.text);
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().message.find("kubeconfig " + p) != std::string::npos);
    CHECK(c.error().message.find(tc.want) != std::string::npos);
    unlink(p.c_str());
  }
  CHECK_FALSE(load_config("/nonexistent/kubeconfig").ok());
}
