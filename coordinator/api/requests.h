#pragma once
// The coordinator's API requests (`ferry.api.<verb>`, JSON bodies from ferryctl
// or any other client) as typed structs, and the one decoder that turns a
// message body into one of them. Decoding never throws and never trusts the
// body: a request that is not an object, has a field of the wrong type, a field
// this verb does not take, or misses a required one is an Error that names the
// verb and the field. Handlers only ever see a decoded request.
//
// Pure functions; no state, any thread. Fuzzed by tests/fuzz/api_request_fuzz.cc.
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/base/result.h"

namespace ferry::coordinator::api {

struct ApplyFile {
  std::string name;  // shown in errors ("plan.yaml document 2")
  std::string text;  // YAML or JSON, one or more documents
};
struct ApplyRequest {
  std::vector<ApplyFile> files;
  // Every check an apply makes (a Provider's connection test too), nothing
  // stored: the console's forms ask the API, so they refuse what it refuses,
  // in its words.
  bool dry_run = false;
};
// get and delete: `kind` is the canonical kind ("Plan"); `kind_word` what the user typed.
struct GetRequest {
  std::string kind, kind_word;
  std::string ns;  // "" = every namespace
  std::string name;
};
struct DeleteRequest {
  std::string kind, kind_word;
  std::string ns;  // defaults to openshift-mtv
  std::string name;
};
struct MigrationRef {
  std::string ns;  // defaults to openshift-mtv
  std::string name;
};
struct CancelRequest {
  MigrationRef migration;
  std::vector<std::string> vms;  // names or ids; empty = every VM
};
struct RetryRequest {
  MigrationRef migration;
  std::string vm;
};
struct CutoverRequest {
  MigrationRef migration;
  std::string at;  // RFC 3339; "" = now
  std::string vm;  // "" = every warm VM (sets spec.cutover)
};
struct InventoryRequest {
  std::string ns, provider;  // "" = all
  bool refresh = false;
};
struct GatherRequest {
  std::string ns;  // defaults to openshift-mtv
  std::string plan, vm;
};
struct StatusRequest {};
// A reply over NATS' payload limit is sent as {"ok":true,"replyId":ID,"parts":N,"bytes":B};
// the client then asks for each part (the raw bytes of the serialized reply, in order).
struct PartRequest {
  std::string reply_id;
  size_t part = 0;
};

using Request =
    std::variant<ApplyRequest, GetRequest, DeleteRequest, CancelRequest, RetryRequest,
                 CutoverRequest, InventoryRequest, GatherRequest, StatusRequest, PartRequest>;

// A refused request: `field` is the JSON field at fault ("" for the whole body).
struct RequestError {
  Error error;
  std::string field;
};

// Decodes the body of `ferry.api.<verb>`.
std::variant<Request, RequestError> decode(const std::string& verb, const std::string& body);

// Every verb decode() knows.
const std::vector<std::string>& verbs();

// The one shape of a refused request, whatever refused it:
// {"ok": false, "code": "<stable code>", "error": "<message>"[, "field": "<field>"]}.
nlohmann::json error_reply(const Error& e);
nlohmann::json error_reply(const RequestError& e);
// An apply refused for several problems: the same shape, `error` joining them,
// plus `errors` (each problem) and `warnings`.
nlohmann::json errors_reply(const std::vector<std::string>& problems,
                            const std::vector<std::string>& warnings = {});

}  // namespace ferry::coordinator::api
