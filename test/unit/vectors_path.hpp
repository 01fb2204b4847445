// Where docs/protocol-vectors/vectors.json is: an absolute path in the
// source tree, fixed at build time (vectors_path.cpp).
#pragma once

namespace ferry::test {

const char* vectors_path();

} // namespace ferry::test
