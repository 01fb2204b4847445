// The source tree's absolute path reaches this one file only (its own
// library in meson.build): ccache keys an object by its compile command, so
// the path in every unit test's command made each fresh clone of the
// repository (CI's) compile all of them again.
#include "vectors_path.hpp"

namespace ferry::test {

const char* vectors_path()
{
    return FERRY_VECTORS;
}

} // namespace ferry::test
