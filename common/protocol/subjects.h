#pragma once
// Every NATS subject, stream and bucket Ferry uses, declared once.
// Node names are single subject tokens (validated by the agent at start).
#include <string>
#include <vector>

namespace ferry::subjects {

// --- Agent -> coordinator (core NATS) ---
// AgentHeartbeat, every kHeartbeatSeconds; the first one is the hello.
inline std::string heartbeat(const std::string& node) { return "ferry.agent.heartbeat." + node; }
inline constexpr const char* kHeartbeatAll = "ferry.agent.heartbeat.*";
inline constexpr int kHeartbeatSeconds = 2;
// TaskProgress, at least once a second per running task. Lossy by design.
inline std::string progress(const std::string& node) { return "ferry.progress." + node; }
inline constexpr const char* kProgressAll = "ferry.progress.*";
// ClaimRequest -> ClaimReply (request/reply), before an agent starts a task.
inline std::string claim(const std::string& node) { return "ferry.claim." + node; }
inline constexpr const char* kClaimAll = "ferry.claim.*";

// --- Agent -> coordinator (JetStream, durable) ---
// TaskResult; stream kResultsStream keeps it until the coordinator acks it, so a
// result produced while the coordinator is down is not lost.
inline std::string result(const std::string& node) { return "ferry.result." + node; }
inline constexpr const char* kResultsStream = "FERRY_RESULTS";
inline constexpr const char* kResultsStreamSubjects = "ferry.result.*";
inline constexpr const char* kResultsConsumer = "coordinator";

// --- Coordinator -> agent ---
// TransferTask, in work-queue stream kTasksStream: a task waits there while its
// agent is down; the agent acks it only after publishing the result.
inline std::string task(const std::string& node) { return "ferry.task." + node; }
inline constexpr const char* kTasksStream = "FERRY_TASKS";
inline constexpr const char* kTasksStreamSubjects = "ferry.task.*";
inline std::string task_consumer(const std::string& node) { return "agent-" + node; }
// CancelTask, in work-queue stream kCancelsStream (consumer task_consumer(node)):
// stop a running task now, or remove its volume. Durable, so a cancel sent while
// the agent is disconnected reaches it when it is back; kept a week at most.
inline std::string cancel(const std::string& node) { return "ferry.cancel." + node; }
inline constexpr const char* kCancelsStream = "FERRY_CANCELS";
inline constexpr const char* kCancelsStreamSubjects = "ferry.cancel.*";
inline constexpr int kCancelsMaxAgeSeconds = 7 * 24 * 3600;

// --- ferryctl -> coordinator (request/reply, JSON bodies) ---
// verbs: apply, get, describe, delete, cancel, inventory, status
inline std::string api(const std::string& verb) { return "ferry.api." + verb; }
inline constexpr const char* kApiAll = "ferry.api.*";

// --- Coordinator state (JetStream key-value buckets) ---
// Resources as applied (spec) keyed "<kind>.<namespace>.<name>"; status lives
// in kStatusBucket under the same key so a spec update never races a status write.
inline constexpr const char* kResourcesBucket = "ferry-resources";
inline constexpr const char* kStatusBucket = "ferry-status";
// Provider inventories keyed "<namespace>.<provider>".
inline constexpr const char* kInventoryBucket = "ferry-inventory";
// Local mode's storage migration (coordinator/storage/local_cluster.h):
// MigPlans and MigMigrations keyed "<kind>.<namespace>.<name>" (spec and
// status in one document), and the claims it made, "Claim.<namespace>.<name>".
inline constexpr const char* kStorageBucket = "ferry-storage";
// The active coordinator's lease: key kLeaderKey, written only by its holder,
// entries expire kLeaderTtlSeconds after the last renewal.
inline constexpr const char* kLeaderBucket = "ferry-leader";
inline constexpr const char* kLeaderKey = "coordinator";
inline constexpr int kLeaderTtlSeconds = 10;

// --- Permissions (NATS authorization; `ferryctl nats-config` writes them) ---
// Each agent connects as its own user and may touch only its node's subjects,
// its own consumer of FERRY_TASKS and its own inboxes; never the KV buckets.
inline std::string agent_user(const std::string& node) { return "ferry-agent-" + node; }
inline std::string agent_inbox_prefix(const std::string& node) { return "_INBOX_" + node; }
inline std::vector<std::string> agent_publish_allow(const std::string& node) {
  std::vector<std::string> allow = {
      heartbeat(node), progress(node), claim(node),
      result(node),    "$JS.API.INFO", std::string("$JS.API.STREAM.INFO.") + kResultsStream};
  for (const char* stream : {kTasksStream, kCancelsStream}) {  // its own consumer of each
    std::string c = std::string(stream) + "." + task_consumer(node);
    for (std::string s :
         {"$JS.API.STREAM.INFO." + std::string(stream), "$JS.API.CONSUMER.INFO." + c,
          "$JS.API.CONSUMER.CREATE." + c, "$JS.API.CONSUMER.CREATE." + c + ".>",
          "$JS.API.CONSUMER.DURABLE.CREATE." + c, "$JS.API.CONSUMER.MSG.NEXT." + c,
          "$JS.ACK." + c + ".>"})
      allow.push_back(s);
  }
  return allow;
}
inline std::vector<std::string> agent_subscribe_allow(const std::string& node) {
  return {agent_inbox_prefix(node) + ".>"};
}
inline constexpr const char* kCoordinatorUser = "ferry-coordinator";
inline constexpr const char* kCtlUser = "ferryctl";

}  // namespace ferry::subjects
