#pragma once
// Forklift's execution conditions on Plan and Migration statuses, so
// `kubectl get plan` / `get migration` columns (manifests/crds) and MTV users'
// scripts see what they see with MTV:
//   Plan:      Ready (validation), Executing, Succeeded | Failed | Canceled
//   Migration: Ready, Running, Succeeded | Failed | Canceled
// Pure; the coordinator calls them where the phases change.
#include <string>

#include <nlohmann/json.hpp>

namespace ferry::coordinator::status {

// Sets condition `type` (status "True") in status["conditions"], replacing one
// of the same type; keeps its lastTransitionTime if it was already True.
void set_condition(nlohmann::json& status, const std::string& type, const std::string& category,
                   const std::string& message, const std::string& now);
void clear_condition(nlohmann::json& status, const std::string& type);
bool has_condition(const nlohmann::json& status, const std::string& type);
// Executing, Succeeded, Failed, Canceled: set by runs, not by validation.
bool is_execution_condition(const std::string& type);
// A Plan's conditions: `validation`'s, then the execution conditions the last
// run stored in `stored` (a status; anything else has none).
nlohmann::json with_execution_conditions(nlohmann::json validation, const nlohmann::json& stored);

// A run starts: the Plan is Executing (its earlier outcome cleared), the
// Migration Ready and Running.
void plan_started(nlohmann::json& plan_status, const std::string& now);
void migration_started(nlohmann::json& migration_status, const std::string& now);
// A run ended with `outcome` (Succeeded, Failed or Canceled).
void plan_finished(nlohmann::json& plan_status, const std::string& outcome, const std::string& now);
void migration_finished(nlohmann::json& migration_status, const std::string& outcome,
                        const std::string& now);

}  // namespace ferry::coordinator::status
