#include "coordinator/providers/vsphere/vim_client.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

namespace ferry::coordinator::vsphere {
namespace {

constexpr const char* kEnvelopeHead =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" "
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
    "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns=\"urn:vim25\"><soapenv:Body>";
constexpr const char* kEnvelopeTail = "</soapenv:Body></soapenv:Envelope>";

size_t append_body(char* p, size_t size, size_t n, void* ud) {
  auto* s = static_cast<std::string*>(ud);
  s->append(p, size * n);
  return size * n;
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string sha1_fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!X509_digest(cert, EVP_sha1(), md, &n)) return "";
  std::string out;
  char buf[4];
  for (unsigned i = 0; i < n; i++) {
    std::snprintf(buf, sizeof buf, i ? ":%02X" : "%02X", md[i]);
    out += buf;
  }
  return out;
}

}  // namespace

// Local names: the SOAP body uses a default namespace, but be lenient with prefixes.
const char* local(const char* name) {
  const char* c = std::strchr(name, ':');
  return c ? c + 1 : name;
}

pugi::xml_node child_local(const pugi::xml_node& n, const char* name) {
  for (auto c : n.children())
    if (!std::strcmp(local(c.name()), name)) return c;
  return {};
}

pugi::xml_node find_local(const pugi::xml_node& n, const char* name) {
  return n.find_node(
      [name](const pugi::xml_node& x) { return !std::strcmp(local(x.name()), name); });
}

std::string xsi_type(const pugi::xml_node& n) {
  for (auto a : n.attributes()) {
    const char* colon = std::strchr(a.name(), ':');
    if (colon && !std::strcmp(colon + 1, "type")) return local(a.value());
  }
  return "";
}

void collect_objects(const pugi::xml_node& returnval, PropertyResult& out) {
  for (auto o : returnval.children()) {
    if (std::strcmp(local(o.name()), "objects")) continue;
    ObjectContent oc;
    oc.obj = Mor{child_local(o, "obj").attribute("type").as_string(),
                 child_local(o, "obj").text().get()};
    for (auto ps : o.children())
      if (!std::strcmp(local(ps.name()), "propSet"))
        oc.props[child_local(ps, "name").text().get()] = child_local(ps, "val");
    out.objects.push_back(std::move(oc));
  }
}

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&apos;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

Mor mor_of(const pugi::xml_node& n) { return Mor{n.attribute("type").as_string(), n.text().get()}; }

VimClient::VimClient(std::string sdk_url, TlsSettings tls)
    : url_(std::move(sdk_url)), tls_(std::move(tls)), curl_(curl_easy_init()) {}

VimClient::~VimClient() {
  if (curl_) curl_easy_cleanup(curl_);
}

void VimClient::apply_tls(CURL* c) {
  curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, this);
  curl_easy_setopt(
      c, CURLOPT_SSL_CTX_FUNCTION, +[](CURL*, void* sslctx, void* ud) noexcept -> CURLcode {
        SSL_CTX_set_cert_verify_callback(
            static_cast<SSL_CTX*>(sslctx),
            [](X509_STORE_CTX* store, void* arg) noexcept -> int {
              auto* self = static_cast<VimClient*>(arg);
              X509* cert = X509_STORE_CTX_get0_cert(store);
              self->seen_thumbprint_ = cert ? sha1_fingerprint(cert) : "";
              if (!self->tls_.sha1_thumbprint.empty()) {
                if (upper(self->tls_.sha1_thumbprint) == self->seen_thumbprint_) return 1;
                self->tls_error_ = "server certificate SHA-1 fingerprint is " +
                                   self->seen_thumbprint_ + ", not the expected " +
                                   upper(self->tls_.sha1_thumbprint);
                return 0;
              }
              if (self->tls_.insecure_skip_verify) return 1;
              int ok = X509_verify_cert(store);
              if (ok != 1)
                self->tls_error_ = std::string("server certificate not trusted (") +
                                   X509_verify_cert_error_string(X509_STORE_CTX_get_error(store)) +
                                   "); set the Secret's thumbprint to " + self->seen_thumbprint_ +
                                   " to pin it, or insecureSkipVerify: \"true\"";
              return ok;
            },
            ud);
        return CURLE_OK;
      });
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  // A pinned fingerprint identifies the server; host names of ESXi hosts and
  // vCenter appliances rarely match their self-signed certificates.
  bool pinned = !tls_.sha1_thumbprint.empty() || tls_.insecure_skip_verify;
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, pinned ? 0L : 2L);
  if (pinned) {
    // The callback above decides by the fingerprint alone: no CA store is
    // needed, and loading the system bundle costs every new connection ~20 ms
    // of CPU under OpenSSL 3.
    curl_easy_setopt(c, CURLOPT_CAINFO, nullptr);
    curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
  }
}

Result<std::string> VimClient::post(const std::string& body, long* http_code) {
  std::string resp;
  curl_easy_reset(curl_);
  curl_easy_setopt(curl_, CURLOPT_URL, url_.c_str());
  curl_easy_setopt(curl_, CURLOPT_POST, 1L);
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &resp);
  curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT, kSoapConnectTimeoutSeconds);
  curl_easy_setopt(curl_, CURLOPT_TIMEOUT, call_timeout_);
  curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_LIMIT, kSoapLowSpeedBytes);
  curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_TIME, kSoapLowSpeedSeconds);
  curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  struct curl_slist* hdrs = nullptr;
  hdrs = curl_slist_append(hdrs, "Content-Type: text/xml; charset=utf-8");
  hdrs = curl_slist_append(hdrs, "SOAPAction: \"urn:vim25/7.0\"");
  std::string cookie_hdr;
  if (!cookie_.empty()) {
    cookie_hdr = "Cookie: " + cookie_;
    hdrs = curl_slist_append(hdrs, cookie_hdr.c_str());
  }
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(curl_, CURLOPT_HEADERDATA, this);
  curl_easy_setopt(
      curl_, CURLOPT_HEADERFUNCTION, +[](char* p, size_t size, size_t n, void* ud) noexcept {
        auto* self = static_cast<VimClient*>(ud);
        std::string line(p, size * n);
        std::string lower = line;
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (lower.rfind("set-cookie:", 0) == 0 &&
            lower.find("vmware_soap_session") != std::string::npos) {
          std::string v = line.substr(11);
          v.erase(0, v.find_first_not_of(" \t"));
          self->cookie_ = v.substr(0, v.find(';'));
          while (!self->cookie_.empty() &&
                 (self->cookie_.back() == '\r' || self->cookie_.back() == '\n'))
            self->cookie_.pop_back();
        }
        return size * n;
      });
  apply_tls(curl_);
  tls_error_.clear();
  CURLcode rc = curl_easy_perform(curl_);
  curl_slist_free_all(hdrs);
  if (rc != CURLE_OK) {
    if (!tls_error_.empty()) return Error(ErrorCode::kPermissionDenied, tls_error_);
    return Error(ErrorCode::kUnavailable,
                 std::string("cannot reach ") + url_ + ": " + curl_easy_strerror(rc));
  }
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, http_code);
  return resp;
}

Result<std::shared_ptr<pugi::xml_document>> VimClient::invoke(const std::string& method,
                                                              const Mor& this_mor,
                                                              const std::string& inner) {
  std::string body = std::string(kEnvelopeHead) + "<" + method + "><_this type=\"" + this_mor.type +
                     "\">" + xml_escape(this_mor.value) + "</_this>" + inner + "</" + method + ">" +
                     kEnvelopeTail;
  long code = 0;
  auto resp = post(body, &code);
  if (!resp.ok()) return resp.error();
  return parse_soap_response(method, url_, *resp, code);
}

Result<std::shared_ptr<pugi::xml_document>> parse_soap_response(const std::string& method,
                                                                const std::string& url,
                                                                const std::string& body,
                                                                long http_code) {
  auto doc = std::make_shared<pugi::xml_document>();
  if (!doc->load_buffer(body.data(), body.size()))
    return Error(ErrorCode::kUnavailable,
                 url + " did not answer with SOAP XML (HTTP " + std::to_string(http_code) + ")");
  pugi::xml_node fault = find_local(*doc, "Fault");
  if (fault) {
    std::string msg = child_local(fault, "faultstring").text().get();
    pugi::xml_node detail = child_local(fault, "detail");
    std::string kind;
    if (detail && detail.first_child()) kind = local(detail.first_child().name());
    ErrorCode ec = ErrorCode::kUnavailable;
    if (kind.find("InvalidLogin") != std::string::npos ||
        msg.find("incorrect user") != std::string::npos)
      ec = ErrorCode::kPermissionDenied;
    if (kind.find("ManagedObjectNotFound") != std::string::npos) ec = ErrorCode::kNotFound;
    if (kind.find("InvalidArgument") != std::string::npos) ec = ErrorCode::kInvalidArgument;
    if (kind.find("FileFault") != std::string::npos) ec = ErrorCode::kIo;
    return Error(ec, method + " failed: " + (msg.empty() ? kind : msg));
  }
  return doc;
}

Status VimClient::login(const std::string& user, const std::string& password) {
  cookie_.clear();
  auto sc = invoke("RetrieveServiceContent", Mor{"ServiceInstance", "ServiceInstance"}, "");
  if (!sc.ok()) return sc.error();
  pugi::xml_node rv = find_local(**sc, "returnval");
  root_folder_ = mor_of(child_local(rv, "rootFolder"));
  property_collector_ = mor_of(child_local(rv, "propertyCollector"));
  view_manager_ = mor_of(child_local(rv, "viewManager"));
  session_manager_ = mor_of(child_local(rv, "sessionManager"));
  if (session_manager_.empty() || property_collector_.empty())
    return Error(ErrorCode::kUnavailable, url_ + " is not a vSphere SDK endpoint");
  auto r = invoke("Login", session_manager_,
                  "<userName>" + xml_escape(user) + "</userName><password>" + xml_escape(password) +
                      "</password>");
  if (!r.ok()) {
    Error e = r.error();
    if (e.code == ErrorCode::kUnavailable && e.message.find("Login failed") != std::string::npos)
      e.code = ErrorCode::kPermissionDenied;
    return e;
  }
  if (cookie_.empty())
    return Error(ErrorCode::kUnavailable, "Login to " + url_ + " returned no session cookie");
  return {};
}

void VimClient::logout() {
  if (cookie_.empty() || session_manager_.empty()) return;
  // A few seconds at most: it runs when a provider goes (shutdown, step-down),
  // where an unreachable vCenter must not hold the coordinator for a minute.
  call_timeout_ = kLogoutTimeoutSeconds;
  (void)invoke("Logout", session_manager_, "");  // a session already gone is fine
  call_timeout_ = kSoapTimeoutSeconds;
  cookie_.clear();
}

Result<PropertyResult> VimClient::retrieve_view(
    const Mor& container, const std::vector<std::string>& types,
    const std::map<std::string, std::vector<std::string>>& paths) {
  PropertyResult out;
  FERRY_TRY(retrieve_view_pages(container, types, paths, 0, [&](const PropertyResult& page) {
    out.docs.insert(out.docs.end(), page.docs.begin(), page.docs.end());
    out.objects.insert(out.objects.end(), page.objects.begin(), page.objects.end());
    return Status{};
  }));
  return out;
}

Status VimClient::retrieve_view_pages(const Mor& container, const std::vector<std::string>& types,
                                      const std::map<std::string, std::vector<std::string>>& paths,
                                      size_t page_size,
                                      const std::function<Status(const PropertyResult&)>& each) {
  std::string inner =
      "<container type=\"" + container.type + "\">" + xml_escape(container.value) + "</container>";
  for (const auto& t : types) inner += "<type>" + t + "</type>";
  inner += "<recursive>true</recursive>";
  auto view = invoke("CreateContainerView", view_manager_, inner);
  if (!view.ok()) return view.error();
  Mor view_mor = mor_of(find_local(**view, "returnval"));
  std::string spec = "<specSet>";
  for (const auto& [type, ps] : paths) {
    spec += "<propSet><type>" + type + "</type>";
    for (const auto& p : ps) spec += "<pathSet>" + p + "</pathSet>";
    spec += "</propSet>";
  }
  spec +=
      "<objectSet><obj type=\"ContainerView\">" + xml_escape(view_mor.value) +
      "</obj><skip>true</skip><selectSet xsi:type=\"TraversalSpec\"><name>view</name>"
      "<type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet>"
      "</specSet>" +
      (page_size ? "<options><maxObjects>" + std::to_string(page_size) + "</maxObjects></options>"
                 : std::string("<options/>"));
  auto r = invoke("RetrievePropertiesEx", property_collector_, spec);
  Status status;
  while (r.ok()) {
    PropertyResult page;
    page.docs.push_back(*r);
    pugi::xml_node rv = find_local(**r, "returnval");
    collect_objects(rv, page);
    std::string token = child_local(rv, "token").text().get();
    status = each(page);
    if (!status.ok() && !token.empty())  // the server may let the rest go
      (void)invoke("CancelRetrievePropertiesEx", property_collector_,
                   "<token>" + xml_escape(token) + "</token>");
    if (!status.ok() || token.empty()) break;
    r = invoke("ContinueRetrievePropertiesEx", property_collector_,
               "<token>" + xml_escape(token) + "</token>");
  }
  (void)invoke("DestroyView", view_mor, "");
  if (!r.ok()) return r.error();
  return status;
}

Result<PropertyResult> VimClient::retrieve_object(const Mor& obj,
                                                  const std::vector<std::string>& paths) {
  std::string spec = "<specSet><propSet><type>" + obj.type + "</type>";
  for (const auto& p : paths) spec += "<pathSet>" + p + "</pathSet>";
  spec += "</propSet><objectSet><obj type=\"" + obj.type + "\">" + xml_escape(obj.value) +
          "</obj><skip>false</skip></objectSet></specSet><options/>";
  auto r = invoke("RetrievePropertiesEx", property_collector_, spec);
  if (!r.ok()) return r.error();
  PropertyResult out;
  out.docs.push_back(*r);
  collect_objects(find_local(**r, "returnval"), out);
  return out;
}

Result<std::string> VimClient::wait_task_result(const Mor& task, int timeout_seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = retrieve_object(task, {"info.state", "info.error", "info.result"});
    if (!r.ok()) return r.error();
    if (r->objects.empty()) return Error(ErrorCode::kNotFound, "task " + task.value + " vanished");
    auto& props = r->objects[0].props;
    std::string state = props.count("info.state") ? props["info.state"].text().get() : "";
    if (state == "success")
      return std::string(props.count("info.result") ? props["info.result"].text().get() : "");
    if (state == "error") {
      // localizedMessage, else the fault's type and any reason/message it carries.
      std::string msg;
      if (props.count("info.error")) {
        pugi::xml_node e = props["info.error"];
        msg = find_local(e, "localizedMessage").text().get();
        pugi::xml_node fault = child_local(e, "fault");
        std::string kind = xsi_type(fault);
        std::string reason = child_local(fault, "reason").text().get();
        if (reason.empty()) reason = find_local(fault, "message").text().get();
        if (msg.empty() || msg.rfind("*types.", 0) == 0) msg = kind;
        if (!reason.empty() && msg.find(reason) == std::string::npos)
          msg += (msg.empty() ? "" : ": ") + reason;
      }
      return Error(ErrorCode::kUnavailable, "task " + task.value + " failed: " + msg);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return Error(ErrorCode::kTimeout, "task " + task.value + " did not finish in time");
}

Status VimClient::wait_task(const Mor& task, int timeout_seconds) {
  auto r = wait_task_result(task, timeout_seconds);
  if (!r.ok()) return r.error();
  return {};
}

Result<std::string> VimClient::http_get(const std::string& url, size_t max_bytes) {
  // The session's own handle: its open connection is reused, so no new TLS
  // handshake (and certificate store) per descriptor read.
  CURL* c = curl_;
  curl_easy_reset(c);
  std::string body;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, kSoapConnectTimeoutSeconds);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, kSoapTimeoutSeconds);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  std::string range = "0-" + std::to_string(max_bytes - 1);
  curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
  std::string cookie_hdr = "Cookie: " + cookie_;
  struct curl_slist* hdrs = curl_slist_append(nullptr, cookie_hdr.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  apply_tls(c);
  tls_error_.clear();
  CURLcode rc = curl_easy_perform(c);
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(hdrs);
  if (rc != CURLE_OK)
    return Error(tls_error_.empty() ? ErrorCode::kUnavailable : ErrorCode::kPermissionDenied,
                 tls_error_.empty() ? "GET " + url + ": " + curl_easy_strerror(rc) : tls_error_);
  if (code == 401 || code == 403)
    return Error(ErrorCode::kPermissionDenied, "GET " + url + ": HTTP " + std::to_string(code));
  if (code == 404) return Error(ErrorCode::kNotFound, "GET " + url + ": HTTP 404");
  if (code != 200 && code != 206)
    return Error(ErrorCode::kUnavailable, "GET " + url + ": HTTP " + std::to_string(code));
  if (body.size() > max_bytes) body.resize(max_bytes);
  return body;
}

}  // namespace ferry::coordinator::vsphere
