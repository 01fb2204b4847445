// Work for libuv's thread pool, typed: a job's work() runs on a pool thread
// and returns its result by value; done() then runs on the loop and gets
// that result, moved. The result lives inside the job object, so nothing is
// shared between the two halves but the job itself, and no out-parameter
// outlives it. Jobs are move-only and owned by whoever holds the pointer:
// the Session until it submits, then the IO, until done() has run.
//
// work() may block on the disk and must not touch the Session or the loop:
// it uses only what it captured (a Library, an OpenFile, a chunk of bytes).
#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace ferry::server {

class PoolJob {
public:
    PoolJob() = default;
    PoolJob(const PoolJob&) = delete;
    PoolJob& operator=(const PoolJob&) = delete;
    virtual ~PoolJob() = default;

    // On a pool thread. Failures are values in the result; an exception
    // (bad_alloc, a bug) is kept and rethrown by done() on the loop, where
    // the connection's guard closes the connection.
    virtual void work() = 0;
    // On the loop, once work() has returned.
    virtual void done() = 0;
};

// `Work` is called as work() -> T, `Done` as done(T).
template <typename Work, typename Done>
class TypedJob final : public PoolJob {
public:
    using Result = std::invoke_result_t<Work&>;
    static_assert(!std::is_void_v<Result>, "a job's work returns its result");

    TypedJob(Work work, Done done) : work_(std::move(work)), done_(std::move(done)) {}

    void work() override
    {
        try {
            result_.emplace(work_());
        } catch (...) {
            failure_ = std::current_exception();
        }
    }

    void done() override
    {
        if (failure_) {
            std::rethrow_exception(failure_);
        }
        done_(std::move(*result_));
    }

private:
    Work work_;
    Done done_;
    std::optional<Result> result_;
    std::exception_ptr failure_;
};

template <typename Work, typename Done>
std::unique_ptr<PoolJob> make_job(Work work, Done done)
{
    return std::make_unique<TypedJob<Work, Done>>(std::move(work), std::move(done));
}

} // namespace ferry::server
