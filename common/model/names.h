#pragma once
// Kubernetes naming rules (DNS-1123) used by validation and by target naming.
#include <string>

namespace ferry::model {

// RFC 1123 label: lowercase alphanumerics and '-', alphanumeric at both ends, <= 63.
bool is_dns1123_label(const std::string& s);
// RFC 1123 subdomain: labels joined by '.', <= 253.
bool is_dns1123_subdomain(const std::string& s);
// What Forklift does to a VM name that is not a valid target name: lowercase,
// invalid characters to '-', trimmed to 63, alphanumeric ends.
std::string to_dns1123_label(const std::string& s);

}  // namespace ferry::model
