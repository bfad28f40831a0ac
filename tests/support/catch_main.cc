// The one Catch2 main() for all test binaries (compiling it is slow; do it once).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
