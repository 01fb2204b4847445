// The build folder's absolute paths reach this one file only (its own
// library in meson.build): ccache keys an object by its compile command, so
// a path in every test file's command made each fresh clone of the
// repository (CI's) compile all of them again.
#include "binary_paths.hpp"

namespace ferry::test {

const char* ferryd_path()
{
    return FERRYD_PATH;
}

const char* ferry_path()
{
    return FERRY_PATH;
}

} // namespace ferry::test
