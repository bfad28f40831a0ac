#include "tools/ferryctl/ferryctl.h"

int main(int argc, char** argv) { return ferry::ferryctl::main(argc, argv); }
