// Runs a check in a child process whose mount namespace hides /proc under a
// plain tmpfs, as on a system without procfs (or in a chroot whose / ferryd
// serves, where a client could make /proc's folders itself).
#pragma once

#include <doctest/doctest.h>

#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

// The code that doesn't come back from a child that could make no mount
// namespace here (unshare refused): the caller skips its check.
inline constexpr int kNoMountNamespace = 77;

// Forks; the child makes its own mount namespace, mounts a tmpfs over
// /proc and exits with CHECK_IN_CHILD()'s result (an exit status: 0 for
// success). Returns that status, or kNoMountNamespace.
template <typename Check>
int exit_status_without_proc(Check&& check_in_child)
{
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            ::mount("none", "/proc", "tmpfs", 0, nullptr) != 0) {
            ::_exit(kNoMountNamespace);
        }
        ::_exit(check_in_child());
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
}
