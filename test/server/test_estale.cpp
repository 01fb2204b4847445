// retry_stale: a lookup that failed with ESTALE is tried once more, and only
// then, and only once.
#include "estale.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <vector>

using namespace ferry::server;

namespace {

// A call that fails with the given errno values in turn, then succeeds with 3.
struct Scripted {
    std::vector<int> failures;
    int calls = 0;

    int operator()()
    {
        const auto at = static_cast<std::size_t>(calls++);
        if (at < failures.size()) {
            errno = failures[at];
            return -1;
        }
        errno = 0;
        return 3;
    }
};

} // namespace

TEST_CASE("retry_stale: a stale handle is looked up once more")
{
    Scripted call{{ESTALE}};
    CHECK(retry_stale([&] { return call(); }) == 3);
    CHECK(call.calls == 2);
}

TEST_CASE("retry_stale: stale twice is the caller's error, with errno ESTALE")
{
    Scripted call{{ESTALE, ESTALE}};
    CHECK(retry_stale([&] { return call(); }) == -1);
    CHECK(errno == ESTALE);
    CHECK(call.calls == 2);
}

TEST_CASE("retry_stale: success and other failures are not repeated")
{
    Scripted ok{{}};
    CHECK(retry_stale([&] { return ok(); }) == 3);
    CHECK(ok.calls == 1);

    Scripted missing{{ENOENT}};
    CHECK(retry_stale([&] { return missing(); }) == -1);
    CHECK(errno == ENOENT);
    CHECK(missing.calls == 1);

    // A stale failure after another failure is not this helper's case.
    Scripted denied{{EACCES, ESTALE}};
    CHECK(retry_stale([&] { return denied(); }) == -1);
    CHECK(errno == EACCES);
    CHECK(denied.calls == 1);
}
