// retry_stale: a lookup that failed with ESTALE is tried once more, and only
// then, and only once.
#include "estale.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

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

TEST_CASE("retry_stale with a folder: the folder is read before the one more try")
{
    char folder_template[] = "/tmp/ferry-estale-XXXXXX";
    REQUIRE(::mkdtemp(folder_template) != nullptr);
    const int folder = ::open(folder_template, O_PATH | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(folder >= 0);
    const int before = ::fcntl(folder, F_GETFD);

    Scripted call{{ESTALE}};
    CHECK(retry_stale(folder, [&] { return call(); }) == 3);
    CHECK(call.calls == 2);

    // Stale twice: ESTALE is what the caller sees, not the refresh's errno.
    Scripted stale{{ESTALE, ESTALE}};
    CHECK(retry_stale(folder, [&] { return stale(); }) == -1);
    CHECK(errno == ESTALE);

    // A folder that cannot be read leaves the second try to report.
    Scripted unreadable{{ESTALE, ENOENT}};
    CHECK(retry_stale(-1, [&] { return unreadable(); }) == -1);
    CHECK(errno == ENOENT);
    CHECK(unreadable.calls == 2);

    Scripted missing{{ENOENT}};
    CHECK(retry_stale(folder, [&] { return missing(); }) == -1);
    CHECK(missing.calls == 1);

    CHECK(::fcntl(folder, F_GETFD) == before); // the folder's descriptor is kept
    ::close(folder);
    ::rmdir(folder_template);
}
