// Where the binaries under test are: the ferryd and ferry that meson built
// beside these tests.
#pragma once

namespace ferry::test {

// Absolute paths, fixed at build time (binary_paths.cpp).
const char* ferryd_path();
const char* ferry_path();

} // namespace ferry::test
