#pragma once
// KubeAuthorizer: who may use the console API in cluster mode, besides the
// holder of the console token. The Kubernetes API decides, as it does for
// kubectl: a TokenReview says whose the bearer token is, then one
// SubjectAccessReview per permission the request needs says whether that
// user holds it (RBAC, or whatever authorizer the cluster runs). The
// coordinator's ServiceAccount needs `create` on tokenreviews and
// subjectaccessreviews (system:auth-delegator; manifests/base/rbac.yaml).
//
// What each API verb needs (group forklift.konveyor.io unless said; "its
// namespace" is the request's "namespace" field, else openshift-mtv):
//   get        `list` on the kind's resource (provider -> providers, ...,
//              secret -> secrets in group "") in its namespace; no namespace
//              means every namespace, so the check is cluster-wide.
//   inventory  `list` on plans in its namespace; none: cluster-wide.
//   gather     `list` on secrets in every namespace: must-gather reads
//              everything, an administrator's right.
//   events     `list` on migrations in every namespace (what get needs for
//              the Migrations the stream carries).
//   status     `list` on plans in openshift-mtv (it carries no namespace;
//              it shows the agents).
//   apply      `create` and `patch` on each document's kind in its
//              metadata.namespace (server-side apply needs both; a dry run
//              needs what the apply would), and `get` on the Secret that a
//              Provider's spec.secret names unless the same apply carries it:
//              the coordinator would otherwise connect with a Secret the user
//              may not read, to a URL the user chose.
//   delete     `delete` on the kind's resource in its namespace.
//   cancel, retry, cutover
//              `patch` on migrations in its namespace.
// A request the API refuses by its shape alone (a body that does not decode,
// an unknown kind or verb) needs only the baseline, `list` on plans in
// openshift-mtv, and gets the API's usual 400, which depends on nothing
// stored: a token that is valid but may not use Ferry learns nothing.
//
// Answers (a token's review and each permission's) are kept for `ttl` (10 s)
// under a SHA-256 of the token (never the token itself), at most 1000; a
// revoked token or role binding takes effect within that time.
//
// Fails closed: when the API server cannot be asked (no connection, a 5xx,
// or the coordinator lacks the rights above) the request is refused with 403
// "cannot ask the API server: ..."; such failures are not cached.
//
// Thread-safe: check() runs on civetweb's threads, concurrently; the caches
// are under a mutex, never held while the API server is asked.
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/kube/client.h"
#include "coordinator/console/console_api.h"

namespace ferry::coordinator::console {

class KubeAuthorizer : public Authorizer {
 public:
  explicit KubeAuthorizer(std::shared_ptr<kube::Client> client,
                          std::chrono::seconds ttl = std::chrono::seconds(10));

  Decision check(const std::string& token, const std::string& verb,
                 const std::string& body) override;

  // A SubjectAccessReview's resourceAttributes.
  struct Permission {
    std::string verb, group, resource;
    std::string ns;  // "": every namespace (cluster-wide)
    auto operator<=>(const Permission&) const = default;
    // "create plans.forklift.konveyor.io in namespace openshift-mtv"
    std::string to_string() const;
  };
  // What `verb` with `body` needs (the table above), each once, in the order
  // asked. Pure; any thread.
  static std::vector<Permission> needs(const std::string& verb, const std::string& body);

 private:
  struct User {
    bool authenticated = false;
    std::string username, uid;
    std::vector<std::string> groups;
    kube::Json extra;  // {key: [values]}, or null
  };
  using Clock = std::chrono::steady_clock;
  template <typename T>
  struct Cached {
    T value;
    Clock::time_point until;
  };

  Result<User> review_token(const std::string& token) const;
  Result<bool> review_access(const User& user, const Permission& p) const;
  // The caches; `key` starts with the token's digest.
  template <typename T>
  bool cached(const std::map<std::string, Cached<T>>& m, const std::string& key, T& out);
  template <typename T>
  void remember(std::map<std::string, Cached<T>>& m, const std::string& key, T value);

  std::shared_ptr<kube::Client> client_;
  std::chrono::seconds ttl_;
  std::mutex mu_;
  std::map<std::string, Cached<User>> users_;    // by token digest
  std::map<std::string, Cached<bool>> allowed_;  // by token digest + permission
};

}  // namespace ferry::coordinator::console
