#pragma once
// Command line of ferry-agent: the node daemon, or `ferry-agent copy ...`.
namespace ferry::agent {
int app_main(int argc, char** argv);
}
