#include "agent/app.h"

int main(int argc, char** argv) { return ferry::agent::app_main(argc, argv); }
