// mhcjit tests: the doctest entry point shared by every test binary.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "doctest/doctest.h"
