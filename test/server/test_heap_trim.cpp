// trim_heap() from several threads at once, in processes where nothing has
// trimmed before: under AddressSanitizer (CI's second step) glibc's
// allocator is then still unset, and malloc_trim's first-time set-up raced
// with itself. ferryd's conformance test_too_slow aborted so at its stop,
// about once in 150 runs, when the last clients of its two workers left
// together. A bare malloc_trim here crashed 9 of 40 such processes.
//
// Its own program: the server suite's other tests trim, and the race needs
// a process that has not (each child below starts from this one's state).
#include "heap_trim.hpp"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <barrier>
#include <thread>
#include <vector>

namespace {

constexpr int kProcesses = 40;
constexpr int kThreads = 4;

// In a child: kThreads threads trim at the same moment, then exit.
[[noreturn]] void race_and_exit()
{
    std::barrier start(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
        threads.emplace_back([&] {
            start.arrive_and_wait();
            ferry::server::trim_heap();
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    ::_exit(0);
}

} // namespace

TEST_CASE("trim_heap from several threads at once, first in its process, neither crashes nor aborts")
{
    int failed = 0;
    for (int i = 0; i < kProcesses; ++i) {
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            race_and_exit();
        }
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            ++failed;
        }
    }
    CHECK(failed == 0);
}
