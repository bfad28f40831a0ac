#pragma once
// Command line and signal handling of the coordinator daemon.
namespace ferry::coordinator {
int app_main(int argc, char** argv);
}
