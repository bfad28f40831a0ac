#pragma once
// Structural validation of one manifest document: required fields, types,
// enums, names. Cross-resource checks (does the referenced map exist, is the
// VM in the inventory) are the coordinator's plan validation, not this.
#include <vector>

#include "common/model/resource.h"

namespace ferry::model {

// Appends every problem of `doc` to `out` (errors and warnings). `where` names
// the document until its kind and name are known.
void validate_document(const Json& doc, const std::string& where, std::vector<FieldError>& out);

// RFC 3339 date-time ("2021-04-04T01:23:45.678+09:00"); seconds since epoch on success.
bool parse_rfc3339(const std::string& s, double* epoch_seconds = nullptr);

// A duration as Kubernetes and Go write them: "90s", "5m", "1h30m", "1.5h",
// "250ms". Positive only; seconds on success.
bool parse_duration(const std::string& s, double* seconds = nullptr);

}  // namespace ferry::model
