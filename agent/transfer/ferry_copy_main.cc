#include "agent/transfer/copy.h"

int main(int argc, char** argv) { return ferry::agent::transfer::copy_main(argc, argv); }
