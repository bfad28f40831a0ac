#include "coordinator/status/conditions.h"

#include <cctype>

namespace ferry::coordinator::status {

using nlohmann::json;

void clear_condition(json& status, const std::string& type) {
  if (!status.is_object() || !status.contains("conditions") || !status["conditions"].is_array())
    return;
  json kept = json::array();
  for (const auto& c : status["conditions"])
    if (!c.is_object() || c.value("type", "") != type) kept.push_back(c);
  status["conditions"] = std::move(kept);
}

bool has_condition(const json& status, const std::string& type) {
  if (!status.is_object() || !status.contains("conditions") || !status["conditions"].is_array())
    return false;
  for (const auto& c : status["conditions"])
    if (c.is_object() && c.value("type", "") == type && c.value("status", "") == "True")
      return true;
  return false;
}

bool is_execution_condition(const std::string& type) {
  return type == "Executing" || type == "Succeeded" || type == "Failed" || type == "Canceled";
}

nlohmann::json with_execution_conditions(json validation, const json& stored) {
  if (!validation.is_array()) validation = json::array();
  if (stored.is_object() && stored.contains("conditions") && stored["conditions"].is_array())
    for (const auto& c : stored["conditions"])
      if (c.is_object() && is_execution_condition(c.value("type", ""))) validation.push_back(c);
  return validation;
}

void set_condition(json& status, const std::string& type, const std::string& category,
                   const std::string& message, const std::string& now) {
  std::string since = now;
  if (status.is_object() && status.contains("conditions") && status["conditions"].is_array())
    for (const auto& c : status["conditions"])
      if (c.is_object() && c.value("type", "") == type && c.value("status", "") == "True")
        since = c.value("lastTransitionTime", now);
  clear_condition(status, type);
  if (!status.contains("conditions") || !status["conditions"].is_array())
    status["conditions"] = json::array();
  status["conditions"].push_back({{"type", type},
                                  {"status", "True"},
                                  {"category", category},
                                  {"message", message},
                                  {"lastTransitionTime", since}});
}

namespace {
std::string upper(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}
}  // namespace

void plan_started(json& st, const std::string& now) {
  for (const char* t : {"Succeeded", "Failed", "Canceled"}) clear_condition(st, t);
  set_condition(st, "Executing", "Advisory", "The plan is EXECUTING.", now);
}

void migration_started(json& st, const std::string& now) {
  set_condition(st, "Ready", "Required", "The migration is ready.", now);
  set_condition(st, "Running", "Advisory", "The migration is RUNNING.", now);
}

void plan_finished(json& st, const std::string& outcome, const std::string& now) {
  clear_condition(st, "Executing");
  set_condition(st, outcome, "Advisory",
                outcome == "Canceled" ? "The plan execution has been CANCELED."
                                      : "The plan execution has " + upper(outcome) + ".",
                now);
}

void migration_finished(json& st, const std::string& outcome, const std::string& now) {
  clear_condition(st, "Running");
  set_condition(st, outcome, "Advisory",
                outcome == "Canceled" ? "The migration has been CANCELED."
                                      : "The migration has " + upper(outcome) + ".",
                now);
}

}  // namespace ferry::coordinator::status
