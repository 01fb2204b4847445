// retry_stale: a lookup that fails with ESTALE is tried again, after
// refreshing the name (reading its folder, asking for an attribute of the
// name), up to kStaleLookupTries calls in all; nothing else is repeated.
// What the refresh does on GlusterFS is test/scaleout's (tests 9b, 9d).
#include "estale.hpp"
#include "without_proc.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

// A folder of our own, opened O_PATH as the library's folders are.
struct Folder {
    char path[32] = "/tmp/ferry-estale-XXXXXX";
    int fd = -1;

    Folder()
    {
        REQUIRE(::mkdtemp(path) != nullptr);
        fd = ::open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        REQUIRE(fd >= 0);
    }
    ~Folder()
    {
        ::close(fd);
        ::rmdir(path);
    }
    Folder(const Folder&) = delete;
    Folder& operator=(const Folder&) = delete;
};

TEST_CASE("retry_stale: a name stale at every try but the last is found")
{
    Folder folder;
    for (int stale = 1; stale < kStaleLookupTries; ++stale) {
        CAPTURE(stale);
        Scripted call{std::vector<int>(static_cast<std::size_t>(stale), ESTALE)};
        CHECK(retry_stale(folder.fd, "name", [&] { return call(); }) == 3);
        CHECK(call.calls == stale + 1);
    }
}

TEST_CASE("retry_stale: stale at every try is the caller's error, with errno ESTALE")
{
    Folder folder;
    Scripted call{std::vector<int>(static_cast<std::size_t>(kStaleLookupTries) + 2, ESTALE)};
    CHECK(retry_stale(folder.fd, "name", [&] { return call(); }) == -1);
    CHECK(errno == ESTALE); // not the folder read's errno
    CHECK(call.calls == kStaleLookupTries);
}

TEST_CASE("retry_stale: success and other failures are not repeated")
{
    Folder folder;
    Scripted ok{{}};
    CHECK(retry_stale(folder.fd, "name", [&] { return ok(); }) == 3);
    CHECK(ok.calls == 1);

    Scripted missing{{ENOENT}};
    CHECK(retry_stale(folder.fd, "name", [&] { return missing(); }) == -1);
    CHECK(errno == ENOENT);
    CHECK(missing.calls == 1);

    // A failure of another kind after a stale one ends the tries.
    Scripted gone{{ESTALE, ENOENT, ESTALE}};
    CHECK(retry_stale(folder.fd, "name", [&] { return gone(); }) == -1);
    CHECK(errno == ENOENT);
    CHECK(gone.calls == 2);

    // A stale failure after another failure is not this helper's case.
    Scripted denied{{EACCES, ESTALE}};
    CHECK(retry_stale(folder.fd, "name", [&] { return denied(); }) == -1);
    CHECK(errno == EACCES);
    CHECK(denied.calls == 1);
}

TEST_CASE("retry_stale: a folder that cannot be read leaves the next try to report, and the folder is kept")
{
    Folder folder;
    const int before = ::fcntl(folder.fd, F_GETFD);
    Scripted unreadable{{ESTALE, ENOENT}};
    CHECK(retry_stale(-1, "name", [&] { return unreadable(); }) == -1);
    CHECK(errno == ENOENT);
    CHECK(unreadable.calls == 2);

    Scripted stale{{ESTALE}};
    CHECK(retry_stale(folder.fd, "name", [&] { return stale(); }) == 3);
    CHECK(::fcntl(folder.fd, F_GETFD) == before); // the folder's descriptor is kept
}

TEST_CASE("forget_stale_handle: only asks; errno, the name and a link's target are left as they were")
{
    Folder folder;
    const int file = ::openat(folder.fd, "f", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    REQUIRE(file >= 0);
    ::close(file);
    REQUIRE(::symlinkat("f", folder.fd, "link") == 0);
    struct ::stat before {};
    REQUIRE(::fstatat(folder.fd, "f", &before, 0) == 0);
    for (const char* name : {"f", "link", ".", "missing"}) {
        CAPTURE(name);
        errno = ESTALE;
        forget_stale_handle(folder.fd, name);
        CHECK(errno == ESTALE);
        refresh_name(folder.fd, name);
        CHECK(errno == ESTALE);
    }
    errno = ESTALE;
    forget_stale_handle(-1, "f"); // no such descriptor: nothing asked, nothing said
    CHECK(errno == ESTALE);
    struct ::stat after {};
    REQUIRE(::fstatat(folder.fd, "f", &after, 0) == 0);
    CHECK(after.st_mode == before.st_mode);
    CHECK(after.st_ctim.tv_sec == before.st_ctim.tv_sec);
    CHECK(after.st_ctim.tv_nsec == before.st_ctim.tv_nsec);
    CHECK(::faccessat(folder.fd, "missing", F_OK, AT_SYMLINK_NOFOLLOW) == -1); // nothing made
    ::unlinkat(folder.fd, "link", 0);
    ::unlinkat(folder.fd, "f", 0);
}

// Round 52: the question went through /proc/self/fd/N/NAME whatever /proc
// was. Without procfs there (a chroot whose / ferryd serves), that is a
// plain path a client can make, leading where it chose; every other use of
// /proc/self/fd asks sys::proc_fd_links_are_procfs first, and so does this.
TEST_CASE("stale_probe_path: through procfs's /proc/self/fd only")
{
    Folder folder;
    CHECK(stale_probe_path(folder.fd, "f") == "/proc/self/fd/" + std::to_string(folder.fd) + "/f");
    // /proc a plain tmpfs holding the very path, as a client could make it
    // in a served /.
    const int status = exit_status_without_proc([&] {
        const std::string fake = "/proc/self/fd/" + std::to_string(folder.fd);
        if (::mkdir("/proc/self", 0755) != 0 || ::mkdir("/proc/self/fd", 0755) != 0 ||
            ::mkdir(fake.c_str(), 0755) != 0) {
            return 2;
        }
        return stale_probe_path(folder.fd, "f") ? 1 : 0;
    });
    if (status == kNoMountNamespace) {
        MESSAGE("no mount namespace here (unshare refused): skipped");
        return;
    }
    CHECK(status == 0);
}
