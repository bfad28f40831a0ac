#pragma once
// ferryctl: the command line client. `validate` works offline; every other
// command is a NATS request to the coordinator's API (ferry.api.<verb>).
#include <string>

#include <nlohmann/json.hpp>

namespace ferry::ferryctl {
int main(int argc, char** argv);
// How long a status (a Migration's, a VM's, a pipeline step's) ran: from its
// `started` to its `completed`, or to now while it runs ("2m45s"); "" before it starts.
std::string elapsed(const nlohmann::json& obj);
}  // namespace ferry::ferryctl
