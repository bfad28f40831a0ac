#include "common/model/resource.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/model/validate.h"

namespace ferry::model {

const std::vector<std::string>& known_kinds() {
  static const std::vector<std::string> kinds = {"Secret",     "Provider", "Host", "NetworkMap",
                                                 "StorageMap", "Hook",     "Plan", "Migration"};
  return kinds;
}

bool is_known_kind(const std::string& kind) {
  const auto& k = known_kinds();
  return std::find(k.begin(), k.end(), kind) != k.end();
}

std::string kind_from_user(const std::string& word) {
  std::string w;
  for (char c : word) w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& k : known_kinds()) {
    std::string lk;
    for (char c : k) lk += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (w == lk || w == lk + "s") return k;
  }
  if (w == "networkmaps" || w == "netmap") return "NetworkMap";
  for (const char* k : {"MigPlan", "MigMigration"}) {
    std::string lk;
    for (const char* c = k; *c; c++) lk += static_cast<char>(std::tolower(*c));
    if (w == lk || w == lk + "s") return k;
  }
  return "";
}

bool is_storage_kind(const std::string& kind) {
  return kind == "MigPlan" || kind == "MigMigration";
}

std::string ResourceKey::kv_key() const { return kind + "." + ns + "." + name; }

Result<ResourceKey> ResourceKey::from_kv_key(const std::string& key) {
  size_t a = key.find('.');
  size_t b = a == std::string::npos ? a : key.find('.', a + 1);
  if (b == std::string::npos) return Error(ErrorCode::kInvalidArgument, "bad key " + key);
  return ResourceKey{key.substr(0, a), key.substr(a + 1, b - a - 1), key.substr(b + 1)};
}

ResourceKey Resource::key() const {
  // Any document may get here (validation reports its errors later), so a
  // field of the wrong type reads as missing instead of throwing; found by
  // tests/fuzz/manifest_fuzz (metadata.namespace: null).
  auto text = [](const Json& j, const char* field, const std::string& dflt) {
    auto it = j.is_object() ? j.find(field) : j.end();
    return j.is_object() && it != j.end() && it->is_string() ? it->get<std::string>() : dflt;
  };
  ResourceKey k;
  k.kind = text(doc, "kind", "");
  const Json md = doc.is_object() && doc.contains("metadata") ? doc["metadata"] : Json::object();
  k.name = text(md, "name", "");
  k.ns = text(md, "namespace", kDefaultNamespace);
  return k;
}

const Json& Resource::spec() const {
  static const Json empty = Json::object();
  auto it = doc.find("spec");
  return it == doc.end() ? empty : *it;
}

std::string FieldError::to_string() const {
  std::string s = where + ": ";
  if (!path.empty()) s += path + ": ";
  s += message;
  if (warning) s = "warning: " + s;
  return s;
}

bool DecodeResult::has_errors() const {
  return std::any_of(errors.begin(), errors.end(), [](const FieldError& e) { return !e.warning; });
}

namespace {

Json scalar_to_json(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted: always a string
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  // integers and floats, as YAML 1.2's core schema reads them
  char* end = nullptr;
  if (s.find_first_not_of("+-0123456789") == std::string::npos) {
    errno = 0;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (*end == 0 && errno == 0) return v;
  }
  if (s.find_first_not_of("+-0123456789.eE") == std::string::npos &&
      s.find_first_of("0123456789") != std::string::npos) {
    double d = std::strtod(s.c_str(), &end);
    if (*end == 0) return d;
  }
  return s;
}

// yaml-cpp 0.7 loops forever, allocating, on some invalid inputs (a lone ","
// is one; the manifest fuzzer found it). A first pass over the parser's events
// stops at more events than the text has bytes, which no real document reaches.
class EventBudget : public YAML::EventHandler {
 public:
  explicit EventBudget(size_t budget) : left_(budget) {}
  void OnDocumentStart(const YAML::Mark& m) override { tick(m); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { tick(m); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { tick(m); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                const std::string&) override {
    tick(m);
  }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    tick(m);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    tick(m);
  }
  void OnMapEnd() override {}

 private:
  void tick(const YAML::Mark& m) {
    if (left_-- == 0) throw YAML::ParserException(m, "the YAML parser does not advance here");
  }
  size_t left_;
};

// Aliases can make a small text a huge document ("billion laughs"): the JSON
// built from it may hold at most `budget` values. An alias inside its own
// anchor makes a cycle (`b: &b [*b]`): nesting is capped at kMaxDepth.
constexpr int kMaxDepth = 100;
Json node_to_json(const YAML::Node& n, size_t& budget, int depth = 0) {
  if (budget-- == 0)
    throw YAML::ParserException(n.Mark(), "aliases expand to more values than allowed");
  if (depth > kMaxDepth)
    throw YAML::ParserException(n.Mark(), "nested more than " + std::to_string(kMaxDepth) +
                                              " levels deep (an alias inside its own anchor?)");
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalar_to_json(n);
    case YAML::NodeType::Sequence: {
      Json a = Json::array();
      for (const auto& x : n) a.push_back(node_to_json(x, budget, depth + 1));
      return a;
    }
    case YAML::NodeType::Map: {
      Json o = Json::object();
      for (const auto& kv : n)
        o[kv.first.as<std::string>()] = node_to_json(kv.second, budget, depth + 1);
      return o;
    }
  }
  return nullptr;
}

void emit(YAML::Emitter& e, const Json& j) {
  if (j.is_object()) {
    e << YAML::BeginMap;
    for (auto it = j.begin(); it != j.end(); ++it) {
      e << YAML::Key << it.key() << YAML::Value;
      emit(e, it.value());
    }
    e << YAML::EndMap;
  } else if (j.is_array()) {
    e << YAML::BeginSeq;
    for (const auto& x : j) emit(e, x);
    e << YAML::EndSeq;
  } else if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    // Quote strings YAML would read back as something else.
    Json back = scalar_to_json(YAML::Node(s));
    if (!back.is_string() || s.empty()) {
      e << YAML::DoubleQuoted << s;
    } else {
      e << s;
    }
  } else if (j.is_boolean()) {
    e << (j.get<bool>() ? "true" : "false");
  } else if (j.is_null()) {
    e << YAML::Null;
  } else {
    e << j.dump();
  }
}

}  // namespace

Result<std::vector<Json>> yaml_to_json(const std::string& text) {
  try {
    {
      std::istringstream in(text);
      YAML::Parser parser(in);
      EventBudget events(text.size() + 16);
      while (parser.HandleNextDocument(events)) {
      }
    }
    std::vector<Json> out;
    size_t values = 64 * text.size() + 1024;
    for (const auto& doc : YAML::LoadAll(text)) {
      if (doc.IsNull()) continue;
      out.push_back(node_to_json(doc, values));
    }
    return out;
  } catch (const YAML::Exception& e) {
    return Error(ErrorCode::kInvalidArgument, "invalid YAML at line " +
                                                  std::to_string(e.mark.line + 1) + ", column " +
                                                  std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
}

std::string to_yaml(const Json& j) {
  YAML::Emitter e;
  emit(e, j);
  return std::string(e.c_str()) + "\n";
}

DecodeResult decode_documents(const std::string& text, const std::string& source_name) {
  DecodeResult r;
  auto docs = yaml_to_json(text);
  if (!docs.ok()) {
    r.errors.push_back({source_name, "", docs.error().message});
    return r;
  }
  int index = 0;
  for (auto& doc : *docs) {
    index++;
    std::string where = source_name + " document " + std::to_string(index);
    size_t before = r.errors.size();
    if (!doc.is_object()) {
      r.errors.push_back({where, "", "a manifest document must be a mapping"});
      continue;
    }
    validate_document(doc, where, r.errors);
    bool bad = std::any_of(r.errors.begin() + static_cast<long>(before), r.errors.end(),
                           [](const FieldError& e) { return !e.warning; });
    if (bad) continue;
    // Normalise: the namespace is explicit from here on.
    if (!doc["metadata"].contains("namespace")) doc["metadata"]["namespace"] = kDefaultNamespace;
    r.resources.push_back(Resource{std::move(doc)});
  }
  return r;
}

Result<std::vector<std::pair<std::string, std::string>>> read_manifest_files(
    const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> files;
  if (fs::is_directory(path, ec)) {
    for (const auto& e : fs::directory_iterator(path, ec)) {
      auto ext = e.path().extension().string();
      if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml" || ext == ".json"))
        files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    if (files.empty())
      return Error(ErrorCode::kInvalidArgument, path + ": no .yaml, .yml or .json files");
  } else if (fs::exists(path, ec)) {
    files.push_back(path);
  } else {
    return Error(ErrorCode::kNotFound, path + ": no such file or directory");
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) return Error(ErrorCode::kIo, f + ": cannot read");
    std::stringstream ss;
    ss << in.rdbuf();
    out.emplace_back(f, ss.str());
  }
  return out;
}

std::string base64_encode(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += t[(n >> s) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t n = uint8_t(in[i]) << 16;
    out += t[(n >> 18) & 63];
    out += t[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += t[(n >> 18) & 63];
    out += t[(n >> 12) & 63];
    out += t[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string base64_decode(const std::string& in, bool* ok) {
  static const std::string chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  bool good = true;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    auto pos = chars.find(c);
    if (pos == std::string::npos) {
      good = false;
      break;
    }
    val = (val << 6) + static_cast<int>(pos);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  if (ok) *ok = good;
  return out;
}

std::string secret_value(const Json& secret, const std::string& key) {
  if (secret.contains("stringData") && secret["stringData"].is_object()) {
    const auto& sd = secret["stringData"];
    if (sd.contains(key)) {
      const auto& v = sd[key];
      return v.is_string() ? v.get<std::string>() : v.dump();
    }
  }
  if (secret.contains("data") && secret["data"].is_object() && secret["data"].contains(key) &&
      secret["data"][key].is_string())
    return base64_decode(secret["data"][key].get<std::string>());
  return "";
}

ResourceKey ref_key(const Json& ref, const std::string& kind, const std::string& default_ns) {
  ResourceKey k{kind, default_ns, ""};
  if (ref.is_object()) {
    k.name = ref.value("name", "");
    if (ref.contains("namespace") && ref["namespace"].is_string() &&
        !ref["namespace"].get<std::string>().empty())
      k.ns = ref["namespace"].get<std::string>();
  }
  return k;
}

}  // namespace ferry::model
