#pragma once
// VimClient: a minimal vSphere Web Services (SOAP, vim25) client over libcurl.
// Owns one curl handle and the session cookie; not thread-safe (one caller at a time).
// TLS: either pins the server certificate's SHA-1 fingerprint (the Secret's
// `thumbprint`, as vCenter displays it), or skips verification
// (`insecureSkipVerify`), or verifies against the system CAs.
#include <curl/curl.h>
#include <pugixml.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/base/result.h"

namespace ferry::coordinator::vsphere {

// Deadlines of one SOAP request. Every provider call is a bounded number of
// these (inventory pages through ContinueRetrievePropertiesEx), plus, for
// vCenter tasks, wait_task's own deadline. curl's default of 300 s per request
// would hold a worker, and the VM waiting on it, for five minutes on a vCenter
// that accepted the connection and went quiet; a request that moves fewer than
// kSoapLowSpeedBytes per second for kSoapLowSpeedSeconds is given up sooner.
inline constexpr long kSoapConnectTimeoutSeconds = 10;
inline constexpr long kSoapTimeoutSeconds = 60;
inline constexpr long kLogoutTimeoutSeconds = 5;  // Logout when a provider goes
inline constexpr long kSoapLowSpeedBytes = 1;
inline constexpr long kSoapLowSpeedSeconds = 30;

struct Mor {
  std::string type;
  std::string value;
  bool empty() const { return value.empty(); }
};

// One object's properties from RetrievePropertiesEx: property path -> <val> node.
struct ObjectContent {
  Mor obj;
  std::map<std::string, pugi::xml_node> props;
};

struct PropertyResult {
  std::vector<std::shared_ptr<pugi::xml_document>> docs;  // keep the nodes alive
  std::vector<ObjectContent> objects;
};

struct TlsSettings {
  std::string sha1_thumbprint;  // "AA:BB:..." or empty
  bool insecure_skip_verify = false;
};

class VimClient {
 public:
  VimClient(std::string sdk_url, TlsSettings tls);
  ~VimClient();

  // RetrieveServiceContent + Login. Errors: kUnavailable (cannot connect),
  // kPermissionDenied (certificate or credentials); messages carry the detail.
  Status login(const std::string& user, const std::string& password);
  const std::string& session_cookie() const { return cookie_; }  // "vmware_soap_session=..."
  const std::string& sdk_url() const { return url_; }
  // The server certificate's SHA-1 fingerprint seen on the last connection.
  const std::string& seen_thumbprint() const { return seen_thumbprint_; }

  // Ends the session (SessionManager.Logout), if there is one; errors are ignored.
  void logout();
  // Invokes a method; `inner` is the XML inside <Method>. Returns the response document.
  Result<std::shared_ptr<pugi::xml_document>> invoke(const std::string& method, const Mor& this_mor,
                                                     const std::string& inner);
  // ContainerView over `container` of `types`, then RetrievePropertiesEx (with
  // continuation) of `paths` per type. The view is destroyed afterwards.
  Result<PropertyResult> retrieve_view(
      const Mor& container, const std::vector<std::string>& types,
      const std::map<std::string, std::vector<std::string>>& paths);
  // The same a page at a time, asking for at most `page_size` objects a page
  // (0: the server's choice): `each` gets a page, whose nodes live only
  // during the call, so a large inventory is never held as XML at once. An
  // error from `each` ends the retrieval.
  Status retrieve_view_pages(const Mor& container, const std::vector<std::string>& types,
                             const std::map<std::string, std::vector<std::string>>& paths,
                             size_t page_size,
                             const std::function<Status(const PropertyResult&)>& each);
  // Properties of one object.
  Result<PropertyResult> retrieve_object(const Mor& obj, const std::vector<std::string>& paths);
  // Waits for a Task to finish; its error message on failure.
  Status wait_task(const Mor& task, int timeout_seconds = 600);
  // Same, returning the task's info.result as text (e.g. a created object's moref).
  Result<std::string> wait_task_result(const Mor& task, int timeout_seconds = 600);
  // Plain HTTPS GET with the session (datastore /folder access); for small files.
  Result<std::string> http_get(const std::string& url, size_t max_bytes);

  const Mor& root_folder() const { return root_folder_; }
  const Mor& property_collector() const { return property_collector_; }
  const Mor& view_manager() const { return view_manager_; }

 private:
  Result<std::string> post(const std::string& body, long* http_code);
  void apply_tls(CURL* c);
  std::string url_;
  TlsSettings tls_;
  CURL* curl_ = nullptr;
  std::string cookie_;
  std::string seen_thumbprint_;
  std::string tls_error_;
  Mor root_folder_, property_collector_, view_manager_, session_manager_;
  long call_timeout_ = kSoapTimeoutSeconds;  // each SOAP call's whole time (curl)
};

std::string xml_escape(const std::string& s);
// A SOAP response body as a document, or the Error its Fault (or its not being XML) means.
// Pure; fuzzed by tests/fuzz/soap_response_fuzz.cc.
Result<std::shared_ptr<pugi::xml_document>> parse_soap_response(const std::string& method,
                                                                const std::string& url,
                                                                const std::string& body,
                                                                long http_code);
// The objects of a RetrievePropertiesEx / ContinueRetrievePropertiesEx returnval.
void collect_objects(const pugi::xml_node& returnval, PropertyResult& out);
// XML helpers that ignore namespace prefixes (servers differ in the prefixes they bind).
const char* local(const char* qualified_name);
pugi::xml_node child_local(const pugi::xml_node& n, const char* name);
pugi::xml_node find_local(const pugi::xml_node& n, const char* name);
std::string xsi_type(const pugi::xml_node& n);  // the xsi:type attribute, any prefix
Mor mor_of(const pugi::xml_node& n);            // <x type="T">value</x>

}  // namespace ferry::coordinator::vsphere
