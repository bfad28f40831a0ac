// The console API in cluster mode against a real control plane
// (tools/dev-cluster): besides the console token, Kubernetes users call it
// with their own ServiceAccount tokens, and the API server decides
// (TokenReview, then SubjectAccessReview per permission the request needs;
// coordinator/console/kube_authorizer.h). Driven with curl, as a browser
// or script would; what was stored is read back with kubectl.
#include <catch2/catch.hpp>

#include "tests/integration/migration/console_http.h"

using namespace ferry::test;
using namespace std::chrono_literals;

namespace {

using Http = ConsoleHttp;

// As `token` ("" = none).
Http request(Cluster& c, const std::string& method, const std::string& path,
             const std::string& token, const std::string& body = "", int seconds = 15) {
  std::vector<std::string> headers;
  if (!token.empty()) headers.push_back("Authorization: Bearer " + token);
  return console_request(c, method, path, headers, body, seconds);
}

std::string apply_body(const std::string& yaml) {
  return Json{{"files", {{{"name", "console.yaml"}, {"text", yaml}}}}}.dump();
}

// Two users in openshift-mtv: `viewer` reads Forklift's resources, `operator`
// also creates and patches them and Secrets (and deletes nothing).
const char* kUsers = R"(apiVersion: v1
kind: ServiceAccount
metadata: {name: viewer, namespace: openshift-mtv}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: operator, namespace: openshift-mtv}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: ferry-viewer, namespace: openshift-mtv}
rules:
- apiGroups: [forklift.konveyor.io]
  resources: [providers, hosts, networkmaps, storagemaps, plans, migrations, hooks]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ferry-viewer, namespace: openshift-mtv}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: ferry-viewer}
subjects: [{kind: ServiceAccount, name: viewer, namespace: openshift-mtv}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: ferry-operator, namespace: openshift-mtv}
rules:
- apiGroups: [forklift.konveyor.io]
  resources: [providers, hosts, networkmaps, storagemaps, plans, migrations, hooks]
  verbs: [get, list, watch, create, patch]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, create, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ferry-operator, namespace: openshift-mtv}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: ferry-operator}
subjects: [{kind: ServiceAccount, name: operator, namespace: openshift-mtv}]
)";

// The host cluster as a Provider: no URL, no Secret, no connection test.
const char* kHostProvider = R"(apiVersion: forklift.konveyor.io/v1beta1
kind: Provider
metadata: {name: host, namespace: openshift-mtv}
spec: {type: openshift}
)";

}  // namespace

TEST_CASE("console API in cluster mode: Kubernetes users' own tokens, as RBAC allows them",
          "[e2e][k8s][console]") {
  Cluster c({});
  ControlPlane k8s(c);
  std::string users = c.dir().file("console-users.yaml");
  write_file(users, kUsers);
  auto applied = k8s.kubectl({"apply", "-f", users});
  REQUIRE(applied.rc == 0);
  auto token_of = [&](const std::string& sa) {
    auto t = k8s.kubectl({"create", "token", sa, "-n", "openshift-mtv"});
    INFO(t.err);
    REQUIRE(t.rc == 0);
    return t.out.substr(0, t.out.find('\n'));
  };
  const std::string viewer = token_of("viewer"), op = token_of("operator");
  std::string token_file = c.dir().file("console.token");
  c.start_coordinator({"--kubernetes", "--kubeconfig", k8s.coordinator_kubeconfig(),
                       "--console-token-file", token_file});
  const std::string console = first_line(token_file);
  auto providers = [&] {
    auto r =
        k8s.kubectl({"get", "providers.forklift.konveyor.io", "-n", "openshift-mtv", "-o", "json"});
    Json j = Json::parse(r.out, nullptr, false);
    return r.rc == 0 && j.is_object() ? j["items"].size() : size_t(1000);
  };

  // Who are you? A token the API server does not know, or none.
  Http none = request(c, "POST", "/api/v1/get", "", R"({"kind":"plan"})");
  CHECK(none.status == 401);
  CHECK(none.error().find("your Kubernetes token") != std::string::npos);
  Http madeup = request(c, "POST", "/api/v1/get", "made-up-" + std::string(56, 'x'),
                        R"({"kind":"plan","namespace":"openshift-mtv"})");
  INFO(madeup.body);
  CHECK(madeup.status == 401);
  CHECK(madeup.json()["code"] == "unauthenticated");
  CHECK(madeup.error().find("does not accept this token") != std::string::npos);
  CHECK(request(c, "GET", "/api/v1/events", "made-up-" + std::string(56, 'x'), "", 3).status ==
        401);

  // The viewer reads in openshift-mtv, and only there.
  Http listed =
      request(c, "POST", "/api/v1/get", viewer, R"({"kind":"plan","namespace":"openshift-mtv"})");
  INFO(listed.body);
  CHECK(listed.status == 200);
  CHECK(listed.json()["ok"] == true);
  Http everywhere = request(c, "POST", "/api/v1/get", viewer, R"({"kind":"provider"})");
  CHECK(everywhere.status == 403);
  CHECK(everywhere.error() ==
        "user \"system:serviceaccount:openshift-mtv:viewer\" may not list "
        "providers.forklift.konveyor.io in every namespace");
  CHECK(
      request(c, "POST", "/api/v1/get", viewer, R"({"kind":"secret","namespace":"openshift-mtv"})")
          .status == 403);
  // It writes nothing: the refusal names the user and the permission.
  Http refused = request(c, "POST", "/api/v1/apply", viewer, apply_body(kHostProvider));
  INFO(refused.body);
  CHECK(refused.status == 403);
  CHECK(refused.json()["code"] == "permission_denied");
  CHECK(refused.error() ==
        "user \"system:serviceaccount:openshift-mtv:viewer\" may not create "
        "providers.forklift.konveyor.io in namespace openshift-mtv");
  Json dry = Json::parse(apply_body(kHostProvider));
  dry["dryRun"] = true;
  CHECK(request(c, "POST", "/api/v1/apply", viewer, dry.dump()).status == 403);
  CHECK(request(c, "POST", "/api/v1/cancel", viewer, R"({"name":"m"})")
            .error()
            .find("may not patch migrations.forklift.konveyor.io in namespace openshift-mtv") !=
        std::string::npos);
  CHECK(providers() == 0);
  // A request refused by its shape gets the API's own 400: the viewer may use Ferry.
  Http garbage = request(c, "POST", "/api/v1/apply", viewer, "{not json");
  CHECK(garbage.status == 400);
  Http kind = request(c, "POST", "/api/v1/get", viewer, R"({"kind":"spaceship"})");
  CHECK(kind.status == 400);
  CHECK(kind.json()["field"] == "kind");
  CHECK(request(c, "POST", "/api/v1/launch", viewer, "{}").status == 400);
  // The event stream carries every namespace's Migrations, and must-gather
  // everything: neither is for a user of one namespace.
  Http events = request(c, "GET", "/api/v1/events", viewer, "", 2);
  CHECK(events.status == 403);
  CHECK(events.error().find("may not list migrations.forklift.konveyor.io in every namespace") !=
        std::string::npos);
  Http gather = request(c, "POST", "/api/v1/gather", viewer, "{}");
  CHECK(gather.status == 403);
  CHECK(gather.error().find("may not list secrets in every namespace") != std::string::npos);
  CHECK(request(c, "POST", "/api/v1/status", viewer, "{}").status == 200);

  // The operator creates; the Provider is in the API, where kubectl sees it.
  Http created = request(c, "POST", "/api/v1/apply", op, apply_body(kHostProvider));
  INFO(created.body);
  REQUIRE(created.status == 200);
  CHECK(created.json()["ok"] == true);
  CHECK(eventually(10s, [&] {
    return k8s.kubectl({"get", "providers.forklift.konveyor.io", "host", "-n", "openshift-mtv"})
               .rc == 0;
  }));
  Http seen = request(c, "POST", "/api/v1/get", viewer,
                      R"({"kind":"provider","namespace":"openshift-mtv"})");
  CHECK(seen.status == 200);
  CHECK(seen.body.find("\"name\":\"host\"") != std::string::npos);
  // A Provider that would connect with a Secret the operator may not read.
  Http borrowed =
      request(c, "POST", "/api/v1/apply", op, apply_body(R"(apiVersion: forklift.konveyor.io/v1beta1
kind: Provider
metadata: {name: vcenter, namespace: openshift-mtv}
spec:
  type: vsphere
  url: https://vcenter.example.com/sdk
  secret: {name: vcenter-admin, namespace: kube-system}
)"));
  CHECK(borrowed.status == 403);
  CHECK(borrowed.error() ==
        "user \"system:serviceaccount:openshift-mtv:operator\" may not get secrets in namespace "
        "kube-system");
  // Deleting is not the operator's.
  Http removal = request(c, "POST", "/api/v1/delete", op, R"({"kind":"provider","name":"host"})");
  CHECK(removal.status == 403);
  CHECK(removal.error().find("may not delete providers.forklift.konveyor.io in namespace "
                             "openshift-mtv") != std::string::npos);
  CHECK(providers() == 1);

  // The console token still does everything.
  CHECK(request(c, "POST", "/api/v1/get", console, R"({"kind":"provider"})").status == 200);
  CHECK(request(c, "GET", "/api/v1/events", console, "", 2).status == 200);
  Http deleted =
      request(c, "POST", "/api/v1/delete", console, R"({"kind":"provider","name":"host"})");
  INFO(deleted.body);
  CHECK(deleted.status == 200);
  CHECK(eventually(10s, [&] { return providers() == 0; }));
}
