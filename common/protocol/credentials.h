#pragma once
// Source credentials and the task protocol: a task in the stream names what
// to copy, never the credential to read it with. The coordinator takes the
// headers (the source session's cookie) out of a task before storing it and
// hands them over in the ClaimReply; the agent puts them back into its copy
// of the task in memory. A source whose URL is the credential (an imageio
// ticket) is stored without it and gets its URL the same way. Pure; any thread.
#include <string>
#include <vector>

#include "ferry/v1/agent.pb.h"

namespace ferry::protocol {

// Removes the headers of every HttpSource of the task; returns them (the
// first non-empty set: one session serves all of a task's disks).
std::vector<std::string> take_source_headers(ferry::v1::AgentTask& task);
// Sets `headers` on every HttpSource of the task.
void put_source_headers(ferry::v1::AgentTask& task, const std::vector<std::string>& headers);
// Sets `url` as the URL of every HttpSource of the task (a source whose URL
// is the credential, handed over with the claim).
void put_source_url(ferry::v1::AgentTask& task, const std::string& url);
// The TLS-PSK user name of a volume served to another node (ServeTask): the
// key itself is per task and comes with the claim.
inline constexpr const char* kServeTlsUser = "ferry";

// Whether the task reads any source over HTTP (and so needs a credential).
bool reads_http(const ferry::v1::AgentTask& task);

}  // namespace ferry::protocol
