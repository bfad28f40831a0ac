#include "coordinator/console/kube_authorizer.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <type_traits>
#include <variant>

#include "common/base/log.h"
#include "common/model/resource.h"
#include "coordinator/api/requests.h"
#include "coordinator/store/kube_state_store.h"

namespace ferry::coordinator::console {

using kube::Json;

namespace {

const Logger kLog("console-auth");

constexpr size_t kMaxCached = 1000;
constexpr std::chrono::seconds kReviewTimeout(10);
constexpr const char* kForklift = "forklift.konveyor.io";

// The raw SHA-256 of the token: what the caches are keyed by.
std::string digest_of(const std::string& token) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(token.data(), token.size(), md, &n, EVP_sha256(), nullptr) != 1) return "";
  return std::string(reinterpret_cast<const char*>(md), n);
}

// j[name] when j is an object that has it, else null: the API server's
// answers are read without ever throwing on a field of another type.
const Json& field(const Json& j, const char* name) {
  static const Json none;
  if (!j.is_object()) return none;
  auto it = j.find(name);
  return it == j.end() ? none : *it;
}

std::string text(const Json& j, const char* name) {
  const Json& v = field(j, name);
  return v.is_string() ? v.get<std::string>() : "";
}

bool truth(const Json& j, const char* name) {
  const Json& v = field(j, name);
  return v.is_boolean() && v.get<bool>();
}

// A kind's resource in the API (store::kind_info, the one table of them).
// A kind it does not name still needs a Forklift permission nobody is given
// by accident, rather than none.
KubeAuthorizer::Permission on_kind(const std::string& verb, const std::string& kind,
                                   const std::string& ns) {
  const auto& ki = store::kind_info(kind);
  if (ki.plural.empty()) {
    std::string lower;
    for (char c : kind) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return {verb, kForklift, lower + "s", ns};
  }
  size_t slash = ki.group_version.find('/');
  std::string group = slash == std::string::npos ? "" : ki.group_version.substr(0, slash);
  return {verb, group, ki.plural, ns};
}

}  // namespace

std::string KubeAuthorizer::Permission::to_string() const {
  return verb + " " + resource + (group.empty() ? "" : "." + group) +
         (ns.empty() ? " in every namespace" : " in namespace " + ns);
}

std::vector<KubeAuthorizer::Permission> KubeAuthorizer::needs(const std::string& verb,
                                                              const std::string& body) {
  // May the user use Ferry at all? Enough for an answer that depends on
  // nothing stored (a refused shape) or shows only an overview.
  const Permission baseline{"list", kForklift, "plans", model::kDefaultNamespace};
  std::vector<Permission> out;
  auto add = [&](Permission p) {
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(std::move(p));
  };
  // Unknown verbs ("events" too), bodies that are not JSON or miss a field:
  // the request's own decoder, so this never disagrees with the API's.
  // The event stream is every namespace's Migrations: what get needs for them.
  if (verb == "events") return {{"list", kForklift, "migrations", ""}};
  auto decoded = api::decode(verb, body);
  if (!std::holds_alternative<api::Request>(decoded)) return {baseline};
  std::visit(
      [&](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, api::ApplyRequest>) {
          std::vector<model::Resource> docs;
          for (const auto& f : r.files) {
            auto dr = model::decode_documents(f.text, f.name);
            if (dr.has_errors()) return add(baseline);  // refused whole, nothing stored
            for (auto& d : dr.resources) docs.push_back(std::move(d));
          }
          if (docs.empty()) return add(baseline);
          std::set<model::ResourceKey> carried;
          for (const auto& d : docs)
            if (d.key().kind == "Secret") carried.insert(d.key());
          for (const auto& d : docs) {
            auto k = d.key();
            add(on_kind("create", k.kind, k.ns));
            add(on_kind("patch", k.kind, k.ns));
            if (k.kind != "Provider") continue;
            const Json& ref = field(d.spec(), "secret");
            if (!ref.is_object()) continue;
            auto sk = model::ref_key(ref, "Secret", k.ns);
            if (!sk.name.empty() && !carried.count(sk)) add(on_kind("get", "Secret", sk.ns));
          }
        } else if constexpr (std::is_same_v<T, api::GetRequest>) {
          add(on_kind("list", r.kind, r.ns));
        } else if constexpr (std::is_same_v<T, api::DeleteRequest>) {
          add(on_kind("delete", r.kind, r.ns));
        } else if constexpr (std::is_same_v<T, api::CancelRequest> ||
                             std::is_same_v<T, api::RetryRequest> ||
                             std::is_same_v<T, api::CutoverRequest>) {
          add(on_kind("patch", "Migration", r.migration.ns));
        } else if constexpr (std::is_same_v<T, api::InventoryRequest>) {
          add({"list", kForklift, "plans", r.ns});
        } else if constexpr (std::is_same_v<T, api::GatherRequest>) {
          // must-gather reads everything (every namespace's resources, logs,
          // inventories): an administrator's right.
          add({"list", "", "secrets", ""});
        } else if constexpr (std::is_same_v<T, api::StatusRequest> ||
                             std::is_same_v<T, api::PartRequest>) {
          add(baseline);
        } else {
          static_assert(sizeof(T) == 0, "a new API verb needs its permissions here");
        }
      },
      std::get<api::Request>(decoded));
  return out;
}

KubeAuthorizer::KubeAuthorizer(std::shared_ptr<kube::Client> client, std::chrono::seconds ttl)
    : client_(std::move(client)), ttl_(ttl) {}

template <typename T>
bool KubeAuthorizer::cached(const std::map<std::string, Cached<T>>& m, const std::string& key,
                            T& out) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = m.find(key);
  if (it == m.end() || it->second.until <= Clock::now()) return false;
  out = it->second.value;
  return true;
}

template <typename T>
void KubeAuthorizer::remember(std::map<std::string, Cached<T>>& m, const std::string& key,
                              T value) {
  std::lock_guard<std::mutex> lock(mu_);
  auto now = Clock::now();
  if (users_.size() + allowed_.size() >= kMaxCached) {
    std::erase_if(users_, [&](const auto& e) { return e.second.until <= now; });
    std::erase_if(allowed_, [&](const auto& e) { return e.second.until <= now; });
    // Many tokens at once (or someone trying many): start over rather than grow.
    if (users_.size() + allowed_.size() >= kMaxCached) {
      users_.clear();
      allowed_.clear();
    }
  }
  m[key] = Cached<T>{std::move(value), now + ttl_};
}

Result<KubeAuthorizer::User> KubeAuthorizer::review_token(const std::string& token) const {
  Json review = {{"apiVersion", "authentication.k8s.io/v1"},
                 {"kind", "TokenReview"},
                 {"spec", {{"token", token}}}};
  auto r = client_->request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", &review,
                            "application/json", kReviewTimeout);
  if (!r.ok()) return r.error().wrap("TokenReview");
  if (!r->ok()) return Error(ErrorCode::kUnavailable, "TokenReview: " + r->message());
  const Json& status = field(r->body, "status");
  User u;
  u.authenticated = truth(status, "authenticated");
  if (!u.authenticated) {
    kLog.debug("token not accepted", {{"error", text(status, "error")}});
    return u;
  }
  const Json& user = field(status, "user");
  u.username = text(user, "username");
  u.uid = text(user, "uid");
  if (field(user, "groups").is_array())
    for (const auto& g : field(user, "groups"))
      if (g.is_string()) u.groups.push_back(g.get<std::string>());
  if (field(user, "extra").is_object()) u.extra = field(user, "extra");
  return u;
}

Result<bool> KubeAuthorizer::review_access(const User& user, const Permission& p) const {
  Json spec = {
      {"user", user.username},
      {"groups", user.groups},
      {"resourceAttributes",
       {{"namespace", p.ns}, {"verb", p.verb}, {"group", p.group}, {"resource", p.resource}}}};
  if (!user.uid.empty()) spec["uid"] = user.uid;
  if (user.extra.is_object() && !user.extra.empty()) spec["extra"] = user.extra;
  Json review = {
      {"apiVersion", "authorization.k8s.io/v1"}, {"kind", "SubjectAccessReview"}, {"spec", spec}};
  auto r = client_->request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", &review,
                            "application/json", kReviewTimeout);
  if (!r.ok()) return r.error().wrap("SubjectAccessReview");
  if (!r->ok()) return Error(ErrorCode::kUnavailable, "SubjectAccessReview: " + r->message());
  return truth(field(r->body, "status"), "allowed");
}

Authorizer::Decision KubeAuthorizer::check(const std::string& token, const std::string& verb,
                                           const std::string& body) {
  auto unavailable = [](const Error& e) {
    kLog.warn("cannot ask the API server; request refused", {{"error", e.message}});
    return Decision{403, "cannot ask the API server: " + e.message};
  };
  std::string digest = digest_of(token);
  if (digest.empty()) return Decision{403, "cannot ask the API server: no SHA-256 of the token"};
  User user;
  if (!cached(users_, digest, user)) {
    auto u = review_token(token);
    if (!u.ok()) return unavailable(u.error());
    user = std::move(*u);
    remember(users_, digest, user);
  }
  if (!user.authenticated)
    return Decision{401, "Authorization: the API server does not accept this token"};
  for (const auto& p : needs(verb, body)) {
    std::string key = digest + "\n" + p.verb + "\n" + p.group + "\n" + p.resource + "\n" + p.ns;
    bool allowed = false;
    if (!cached(allowed_, key, allowed)) {
      auto a = review_access(user, p);
      if (!a.ok()) return unavailable(a.error());
      allowed = *a;
      remember(allowed_, key, allowed);
    }
    if (!allowed) {
      kLog.info("console request refused",
                {{"user", user.username}, {"verb", verb}, {"needs", p.to_string()}});
      return Decision{403, "user \"" + user.username + "\" may not " + p.to_string()};
    }
  }
  return {};
}

}  // namespace ferry::coordinator::console
