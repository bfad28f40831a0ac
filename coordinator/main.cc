#include "coordinator/app.h"

int main(int argc, char** argv) { return ferry::coordinator::app_main(argc, argv); }
