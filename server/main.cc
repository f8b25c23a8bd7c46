// havend: the Haven relay server (the program is server/app/havend_main.cc).
#include "app/havend_main.h"

int main(int argc, char** argv) { return haven::server::HavendMain(argc, argv); }
