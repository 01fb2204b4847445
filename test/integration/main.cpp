// Integration tests: a real ferryd on a free loopback port and the real
// ferry binary (paths from meson), plus raw protocol through the client library.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
