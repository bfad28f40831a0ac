#pragma once
// ferryctl: the command line client. `validate` works offline; every other
// command is a NATS request to the coordinator's API (ferry.api.<verb>).
namespace ferry::ferryctl {
int main(int argc, char** argv);
}
