#include "coordinator/api/requests.h"

#include <nlohmann/json.hpp>
#include <set>

#include "common/model/resource.h"

namespace ferry::coordinator::api {
namespace {

using Json = nlohmann::json;

const char* type_name(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::binary:
      return "binary";
    case Json::value_t::discarded:
      return "invalid";
    default:
      return "a number";
  }
}

// Reads the fields of one request object, remembering the first problem.
// Every field read is also declared, so an unknown field can be reported.
class Fields {
 public:
  Fields(std::string verb, const Json& obj) : verb_(std::move(verb)), obj_(obj) {}

  std::string str(const char* name, bool required = false, std::string def = "") {
    known_.insert(name);
    auto it = obj_.find(name);
    if (it == obj_.end() || it->is_null()) {
      if (required) fail(name, "is required");
      return def;
    }
    if (!it->is_string()) {
      fail(name, std::string("must be a string, not ") + type_name(*it));
      return def;
    }
    const auto& s = it->get_ref<const std::string&>();
    if (required && s.empty()) fail(name, "must not be empty");
    return s;
  }

  bool boolean(const char* name) {
    known_.insert(name);
    auto it = obj_.find(name);
    if (it == obj_.end() || it->is_null()) return false;
    if (!it->is_boolean()) {
      fail(name, std::string("must be true or false, not ") + type_name(*it));
      return false;
    }
    return it->get<bool>();
  }

  std::vector<std::string> strings(const char* name) {
    known_.insert(name);
    std::vector<std::string> out;
    auto it = obj_.find(name);
    if (it == obj_.end() || it->is_null()) return out;
    if (!it->is_array()) {
      fail(name, std::string("must be an array of strings, not ") + type_name(*it));
      return out;
    }
    for (size_t i = 0; i < it->size(); i++) {
      const Json& e = (*it)[i];
      if (!e.is_string() || e.get_ref<const std::string&>().empty()) {
        fail(std::string(name) + "[" + std::to_string(i) + "]",
             std::string("must be a non-empty string, not ") +
                 (e.is_string() ? "empty" : type_name(e)));
        return {};
      }
      out.push_back(e.get<std::string>());
    }
    return out;
  }

  size_t index(const char* name) {
    known_.insert(name);
    auto it = obj_.find(name);
    if (it == obj_.end() || it->is_null()) {
      fail(name, "is required");
      return 0;
    }
    if (!it->is_number_unsigned()) {
      fail(name, std::string("must be a number >= 0, not ") + type_name(*it));
      return 0;
    }
    return it->get<size_t>();
  }

  const Json* array(const char* name) {
    known_.insert(name);
    auto it = obj_.find(name);
    if (it == obj_.end() || it->is_null()) return nullptr;
    if (!it->is_array()) {
      fail(name, std::string("must be an array, not ") + type_name(*it));
      return nullptr;
    }
    return &*it;
  }

  void fail(const std::string& field, const std::string& why) {
    if (!problem_) problem_ = Problem{field, why};
  }

  struct Problem {
    std::string field, why;
  };
  // The first problem, or an unknown field.
  std::optional<Problem> finish() {
    if (problem_) return problem_;
    for (auto it = obj_.begin(); it != obj_.end(); ++it)
      if (!known_.count(it.key())) {
        fail(it.key(), "is not a field of this request");
        break;
      }
    return problem_;
  }

  const std::string& verb() const { return verb_; }

 private:
  std::string verb_;
  const Json& obj_;
  std::set<std::string> known_;
  std::optional<Problem> problem_;
};

std::string kind_of(Fields& f, std::string word) {
  if (word.empty()) return "";
  std::string kind = model::kind_from_user(word);
  if (kind.empty()) f.fail("kind", "unknown resource type \"" + word + "\"");
  return kind;
}

MigrationRef migration_ref(Fields& f) {
  MigrationRef m;
  m.ns = f.str("namespace", false, model::kDefaultNamespace);
  if (m.ns.empty()) m.ns = model::kDefaultNamespace;
  m.name = f.str("name", true);
  return m;
}

Request decode_fields(Fields& f) {
  const std::string& v = f.verb();
  if (v == "apply") {
    ApplyRequest r;
    if (const Json* files = f.array("files")) {
      for (size_t i = 0; i < files->size(); i++) {
        const Json& e = (*files)[i];
        std::string at = "files[" + std::to_string(i) + "]";
        if (!e.is_object()) {
          f.fail(at, std::string("must be an object, not ") + type_name(e));
          break;
        }
        Fields ff(v, e);
        ApplyFile file{ff.str("name", false, "request"), ff.str("text", true)};
        if (auto p = ff.finish()) {
          f.fail(at + "." + p->field, p->why);
          break;
        }
        r.files.push_back(std::move(file));
      }
    }
    if (r.files.empty()) f.fail("files", "at least one file is required");
    r.dry_run = f.boolean("dryRun");
    return r;
  }
  if (v == "get") {
    GetRequest r;
    r.kind_word = f.str("kind", true);
    r.kind = kind_of(f, r.kind_word);
    r.ns = f.str("namespace");
    r.name = f.str("name");
    return r;
  }
  if (v == "delete") {
    DeleteRequest r;
    r.kind_word = f.str("kind", true);
    r.kind = kind_of(f, r.kind_word);
    r.ns = f.str("namespace", false, model::kDefaultNamespace);
    if (r.ns.empty()) r.ns = model::kDefaultNamespace;
    r.name = f.str("name", true);
    return r;
  }
  if (v == "cancel") {
    CancelRequest r;
    r.migration = migration_ref(f);
    r.vms = f.strings("vms");
    return r;
  }
  if (v == "retry") {
    RetryRequest r;
    r.migration = migration_ref(f);
    r.vm = f.str("vm", true);
    return r;
  }
  if (v == "cutover") {
    CutoverRequest r;
    r.migration = migration_ref(f);
    r.at = f.str("at");
    r.vm = f.str("vm");
    return r;
  }
  if (v == "inventory") {
    InventoryRequest r;
    r.ns = f.str("namespace");
    r.provider = f.str("provider");
    r.refresh = f.boolean("refresh");
    return r;
  }
  if (v == "gather") {
    GatherRequest r;
    r.ns = f.str("namespace", false, model::kDefaultNamespace);
    if (r.ns.empty()) r.ns = model::kDefaultNamespace;
    r.plan = f.str("plan");
    r.vm = f.str("vm");
    return r;
  }
  if (v == "part") {
    PartRequest r;
    r.reply_id = f.str("replyId", true);
    r.part = f.index("part");
    return r;
  }
  return StatusRequest{};
}

}  // namespace

const std::vector<std::string>& verbs() {
  static const std::vector<std::string> v = {"apply",   "get",       "delete", "cancel", "retry",
                                             "cutover", "inventory", "gather", "status", "part"};
  return v;
}

std::variant<Request, RequestError> decode(const std::string& verb, const std::string& body) {
  auto refuse = [&](const std::string& why) {
    return RequestError{Error(ErrorCode::kInvalidArgument, "ferry.api." + verb + ": " + why), ""};
  };
  bool known = false;
  for (const auto& v : verbs()) known = known || v == verb;
  if (!known) {
    std::string list;
    for (const auto& v : verbs()) list += (list.empty() ? "" : ", ") + v;
    return RequestError{Error(ErrorCode::kInvalidArgument,
                              "unknown API verb \"" + verb + "\" (one of: " + list + ")"),
                        ""};
  }
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return refuse("request is not JSON");
  if (!j.is_object())
    return refuse(std::string("request must be a JSON object, not ") + type_name(j));
  Fields f(verb, j);
  Request r = decode_fields(f);
  if (auto p = f.finish())
    return RequestError{
        Error(ErrorCode::kInvalidArgument, "ferry.api." + verb + ": " + p->field + ": " + p->why),
        p->field};
  return r;
}

nlohmann::json error_reply(const Error& e) {
  return {{"ok", false}, {"code", error_code_name(e.code)}, {"error", e.message}};
}

nlohmann::json error_reply(const RequestError& e) {
  auto j = error_reply(e.error);
  if (!e.field.empty()) j["field"] = e.field;
  return j;
}

nlohmann::json errors_reply(const std::vector<std::string>& problems,
                            const std::vector<std::string>& warnings) {
  std::string joined;
  for (const auto& p : problems) joined += (joined.empty() ? "" : "\n") + p;
  auto j = error_reply(Error(ErrorCode::kInvalidArgument, joined));
  j["errors"] = problems;
  j["warnings"] = warnings;
  return j;
}

}  // namespace ferry::coordinator::api
