// PoolJob: a job's result goes from work() to done() by value, inside the
// job, and an exception in work() reaches done() on the loop.
#include "pool_job.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <string>

using namespace ferry::server;

TEST_CASE("a job hands work's result to done, moved")
{
    std::string seen;
    int works = 0;
    auto job = make_job(
        [&works] {
            ++works;
            return std::make_unique<std::string>("from the pool");
        },
        [&seen](std::unique_ptr<std::string> result) { seen = *result; });
    CHECK(seen.empty());
    job->work();
    CHECK(works == 1);
    CHECK(seen.empty()); // nothing happens on the loop until done()
    job->done();
    CHECK(seen == "from the pool");
}

TEST_CASE("a job owns what its work captured, and may change it")
{
    auto job = make_job(
        [owned = std::make_unique<int>(41)]() mutable {
            ++*owned;
            int value = *owned;
            owned.reset();
            return value;
        },
        [](int value) { CHECK(value == 42); });
    job->work();
    job->done();
}

TEST_CASE("an exception in work is kept and rethrown by done, not on the pool thread")
{
    bool done_ran = false;
    auto job =
        make_job([]() -> int { throw std::runtime_error("disk on fire"); }, [&done_ran](int) { done_ran = true; });
    CHECK_NOTHROW(job->work());
    CHECK_THROWS_WITH_AS(job->done(), "disk on fire", std::runtime_error);
    CHECK_FALSE(done_ran);
}
