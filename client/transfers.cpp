#include "transfers.hpp"

#include "interrupt.hpp"
#include "local_files.hpp"
#include "operations.hpp"
#include "posix_io.hpp"
#include "progress.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <thread>

namespace ferry::client {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start)
{
    return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string download_path(const std::string& name, const GetPlacement& placement)
{
    if (placement.output) {
        return *placement.output == "-" ? "-" : resolve_download_path(name, placement.output);
    }
    if (placement.folder) {
        const std::string& folder = *placement.folder;
        return folder.ends_with('/') ? folder + name : folder + "/" + name;
    }
    return resolve_download_path(name, std::nullopt);
}

// Shows each file as it ends (for people), then the summary: for people
// only with several files, with --json always (one object per command).
class Report {
public:
    Report(const Output& output, std::size_t count, bool upload)
        : output_(output), upload_(upload), start_(Clock::now())
    {
        summary_.files.resize(count);
    }

    FileOutcome& file(std::size_t index) { return summary_.files[index]; }
    bool single() const { return summary_.files.size() == 1; }

    void failed(std::size_t index, const Error& error)
    {
        summary_.files[index].error = error;
        if (!output_.json()) {
            output_.error(single() ? error
                                   : Error{error.code, "\"" + summary_.files[index].name + "\": " + error.message});
        }
    }
    void transferred(std::size_t index, TransferResult result)
    {
        FileOutcome& outcome = summary_.files[index];
        if (upload_) {
            result.local = outcome.local; // "-", not the file standard input was spooled to
        }
        output_.transferred(result, upload_);
        outcome.done = std::move(result);
    }
    void skipped(std::size_t index, const std::string& why)
    {
        FileOutcome& outcome = summary_.files[index];
        outcome.skipped = why;
        output_.skipped(outcome, upload_);
    }
    // Ctrl-C: what was not done yet is reported as not done.
    void abandon_rest(const std::deque<std::size_t>& indices, const Error& why)
    {
        for (const auto index : indices) {
            failed(index, why);
        }
    }

    // Of `indices`, the files that failed for a reason that may pass
    // (exit status 6), their errors cleared for another try. None once the
    // user interrupted.
    std::vector<std::size_t> take_retryable(const std::vector<std::size_t>& indices)
    {
        std::vector<std::size_t> again;
        if (interrupted()) {
            return again;
        }
        for (const auto index : indices) {
            auto& error = summary_.files[index].error;
            if (error && exit_status(error->code) == kExitTransient) {
                again.push_back(index);
            }
        }
        return again;
    }
    void clear(std::size_t index) { summary_.files[index].error.reset(); }

    int finish()
    {
        summary_.seconds = seconds_since(start_);
        output_.summary(summary_, upload_);
        std::vector<ErrorCode> failures;
        for (const auto& file : summary_.files) {
            if (file.error) {
                failures.push_back(file.error->code);
            }
        }
        return exit_status(failures);
    }

private:
    const Output& output_;
    bool upload_;
    Clock::time_point start_;
    TransferSummary summary_;
};

Error interrupted_before_start()
{
    return Error{ErrorCode::aborted, "interrupted before it started"};
}

// Sleeps before retry `attempt`, waking for Ctrl-C; false if interrupted.
bool wait_to_retry(const Output& output, unsigned attempt, unsigned retries, std::size_t files)
{
    const auto delay = retry_delay(attempt);
    output.detail("retrying " + std::to_string(files) + " file" + (files == 1 ? "" : "s") + " in " +
                  std::to_string(delay.count() / 1000.0).substr(0, 4) + " s (retry " + std::to_string(attempt) +
                  " of " + std::to_string(retries) + ")");
    const auto until = Clock::now() + delay;
    while (Clock::now() < until) {
        if (interrupted()) {
            return false;
        }
        std::this_thread::sleep_for(std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(100)));
    }
    return !interrupted();
}

// Standard input read to its end into a private temporary file, removed
// when done: a put must declare its size before its data (PROTOCOL.md 4.5).
class SpooledInput {
public:
    SpooledInput() = default;
    SpooledInput(const SpooledInput&) = delete;
    SpooledInput& operator=(const SpooledInput&) = delete;
    ~SpooledInput()
    {
        if (!path_.empty()) {
            (void)::unlink(path_.c_str());
        }
    }

    const std::string& path() const { return path_; }

    Status read_all()
    {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/ferry-stdin-XXXXXX";
        const int fd = ::mkostemp(pattern.data(), O_CLOEXEC);
        if (fd < 0) {
            return local_error("cannot create a temporary file for standard input in \"" +
                                   pattern.substr(0, pattern.rfind('/')) + "\"",
                               errno);
        }
        path_ = pattern;
        LocalFile file(path_, fd);
        std::vector<std::uint8_t> buffer(1024 * 1024);
        for (;;) {
            if (interrupted()) {
                return Error{ErrorCode::aborted, "interrupted while reading standard input"};
            }
            // One read, not read_full: a pipe's bytes are spooled as they come.
            const ssize_t got =
                sys::retry_on_eintr([&] { return ::read(STDIN_FILENO, buffer.data(), buffer.size()); }, interrupted);
            if (got < 0 && errno == EINTR) {
                continue; // interrupted: the check above says so
            }
            if (got < 0) {
                return local_error("cannot read standard input", errno);
            }
            if (got == 0) {
                break;
            }
            if (auto wrote = file.write_all(std::span<const std::uint8_t>(buffer.data(), static_cast<std::size_t>(got)));
                !wrote) {
                return wrote;
            }
        }
        return file.close();
    }

private:
    std::string path_;
};

} // namespace

std::chrono::milliseconds retry_delay(unsigned attempt)
{
    const unsigned doublings = std::min(attempt == 0 ? 0U : attempt - 1, 5U);
    const auto delay = std::chrono::milliseconds(1000) * (1U << doublings);
    return std::min<std::chrono::milliseconds>(delay, kMaxRetryDelay);
}

namespace {

// One try at the gets of `todo` (indices into `names`).
void get_pass(Connection& connection, const Output& output, Report& report, const std::vector<std::string>& names,
              const GetPlacement& placement, const TransferFlags& flags, const std::vector<std::size_t>& todo)
{
    if (!connection.is_open()) {
        if (auto again = connection.reconnect(); !again) {
            report.abandon_rest(std::deque<std::size_t>(todo.begin(), todo.end()), again.error());
            return;
        }
    }
    std::vector<std::optional<PendingGet>> pending(names.size());
    std::deque<std::size_t> waiting;   // to be sent, in order
    std::deque<std::size_t> in_flight; // sent; their replies come back in this order
    for (const std::size_t i : todo) {
        GetOptions options;
        options.name = names[i];
        options.dest = download_path(names[i], placement);
        options.to_stdout = options.dest == "-";
        options.resume = flags.resume;
        options.hash = flags.hash;
        report.file(i).name = names[i];
        report.file(i).local = options.dest;
        if (interrupted()) {
            report.failed(i, interrupted_before_start());
            continue;
        }
        if (flags.clobber != Clobber::replace) {
            // Nothing is in flight yet: the connection is free for the check.
            if (!connection.is_open()) {
                if (auto again = connection.reconnect(); !again) {
                    report.failed(i, again.error());
                    continue;
                }
            }
            auto skip = skip_get(connection, options.name, options.dest, flags.clobber, flags.hash);
            if (!skip) {
                report.failed(i, skip.error());
                continue;
            }
            if (skip.value()) {
                report.skipped(i, *skip.value());
                continue;
            }
        }
        auto prepared = prepare_get(options);
        if (!prepared) {
            report.failed(i, prepared.error());
            continue;
        }
        pending[i] = std::move(prepared.value());
        waiting.push_back(i);
    }

    while (!waiting.empty() || !in_flight.empty()) {
        if (!connection.is_open()) {
            // Requests sent on the lost connection go out again on the new one.
            waiting.insert(waiting.begin(), in_flight.begin(), in_flight.end());
            in_flight.clear();
            if (auto again = connection.reconnect(); !again) {
                report.abandon_rest(waiting, again.error());
                break;
            }
        }
        while (in_flight.size() < kGetsInFlight && !waiting.empty() && connection.is_open()) {
            const std::size_t index = waiting.front();
            waiting.pop_front();
            if (auto sent = send_get(connection, *pending[index]); !sent) {
                report.failed(index, sent.error());
                continue;
            }
            in_flight.push_back(index);
        }
        if (in_flight.empty()) {
            continue;
        }
        const std::size_t index = in_flight.front();
        in_flight.pop_front();
        PendingGet& get = *pending[index];
        ProgressBar bar(get.options.name, output.progress());
        get.options.progress = [&bar](std::uint64_t done, std::uint64_t total) { bar.update(done, total); };
        auto result = finish_get(connection, get);
        bar.finish();
        get.options.progress = nullptr;
        if (result) {
            report.transferred(index, std::move(result.value()));
            continue;
        }
        if (get.restart) {
            waiting.push_front(index);
            continue;
        }
        report.failed(index, result.error());
        if (result.error().code == ErrorCode::aborted && interrupted()) {
            waiting.insert(waiting.begin(), in_flight.begin(), in_flight.end());
            report.abandon_rest(waiting, interrupted_before_start());
            break;
        }
    }
}

// One try at the puts of `todo`; `sources` are the paths to read (standard
// input already spooled).
void put_pass(Connection& connection, const Output& output, Report& report, const std::vector<std::string>& sources,
              const std::vector<std::string>& names, const TransferFlags& flags, std::vector<std::size_t> todo)
{
    if (!connection.is_open()) {
        if (auto again = connection.reconnect(); !again) {
            report.abandon_rest(std::deque<std::size_t>(todo.begin(), todo.end()), again.error());
            return;
        }
    }
    if (flags.clobber != Clobber::replace) {
        // Before any put is sent, while the connection is free for questions.
        std::vector<std::size_t> to_send;
        for (const std::size_t index : todo) {
            if (!connection.is_open()) {
                if (auto again = connection.reconnect(); !again) {
                    report.failed(index, again.error());
                    continue;
                }
            }
            auto skip = skip_put(connection, sources[index], names[index], flags.clobber, flags.hash);
            if (!skip) {
                report.failed(index, skip.error());
            } else if (skip.value()) {
                report.skipped(index, *skip.value());
            } else {
                to_send.push_back(index);
            }
        }
        todo = std::move(to_send);
    }
    std::size_t next = 0;

    // Sends the request of the next file that can be opened, on a live
    // connection; nullopt when no file is left.
    const auto start_next = [&]() -> std::optional<std::pair<std::size_t, PendingPut>> {
        while (next < todo.size()) {
            const std::size_t index = todo[next++];
            PutOptions options;
            options.local_path = sources[index];
            options.name = names[index];
            options.resume = flags.resume;
            options.hash = flags.hash;
            if (interrupted()) {
                report.failed(index, interrupted_before_start());
                continue;
            }
            auto prepared = prepare_put(options);
            if (!prepared) {
                report.failed(index, prepared.error());
                continue;
            }
            Status sent = connection.is_open() ? send_put(connection, prepared.value()) : Status(success());
            if (!connection.is_open()) {
                // Lost now or before: one fresh connection, one more try.
                sent = connection.reconnect();
                if (sent) {
                    sent = send_put(connection, prepared.value());
                }
            }
            if (!sent) {
                report.failed(index, sent.error());
                continue;
            }
            return std::pair{index, std::move(prepared.value())};
        }
        return std::nullopt;
    };

    auto current = start_next();
    while (current) {
        auto& [index, put] = *current;
        ProgressBar bar(put.options.name, output.progress());
        put.options.progress = [&bar](std::uint64_t done, std::uint64_t total) { bar.update(done, total); };
        auto uploaded = send_upload(connection, put);
        bar.finish();
        if (!uploaded) {
            report.failed(index, uploaded.error());
            current = start_next();
            continue;
        }
        // The next request rides behind the commit; its reply waits behind the commit's.
        auto following = start_next();
        auto committed = finish_put(connection, put);
        if (committed) {
            report.transferred(index, std::move(committed.value()));
        } else {
            report.failed(index, committed.error());
        }
        if (following && !connection.is_open()) {
            // The commit's failure took the connection, and the request behind it.
            Status again = connection.reconnect();
            if (again) {
                again = send_put(connection, following->second);
            }
            if (!again) {
                report.failed(following->first, again.error());
                following = start_next();
            }
        }
        current = std::move(following);
    }
}

// Runs `pass` over every file, then again over those that failed for a
// passing reason, up to flags.retries times, resuming where they stopped.
template <typename Pass>
void with_retries(const Output& output, Report& report, std::size_t count, TransferFlags flags, Pass pass)
{
    std::vector<std::size_t> todo(count);
    for (std::size_t i = 0; i < count; ++i) {
        todo[i] = i;
    }
    for (unsigned attempt = 1;; ++attempt) {
        pass(flags, todo);
        if (attempt > flags.retries) {
            return;
        }
        auto again = report.take_retryable(todo);
        if (again.empty() || !wait_to_retry(output, attempt, flags.retries, again.size())) {
            return;
        }
        for (const auto index : again) {
            report.clear(index);
        }
        todo = std::move(again);
        flags.resume = true; // what the failed try moved is kept: continue from there
    }
}

} // namespace

int run_gets(Connection& connection, const Output& output, const std::vector<std::string>& names,
             const GetPlacement& placement, const TransferFlags& flags)
{
    Report report(output, names.size(), false);
    with_retries(output, report, names.size(), flags,
                 [&](const TransferFlags& now, const std::vector<std::size_t>& todo) {
                     get_pass(connection, output, report, names, placement, now, todo);
                 });
    return report.finish();
}

int run_puts(Connection& connection, const Output& output, const std::vector<std::string>& locals,
             const std::optional<std::string>& as, const TransferFlags& flags)
{
    Report report(output, locals.size(), true);
    std::vector<std::string> sources = locals;
    std::vector<std::string> names(locals.size());
    SpooledInput input;
    for (std::size_t i = 0; i < locals.size(); ++i) {
        names[i] = as.value_or(base_name(locals[i]));
        report.file(i).name = names[i];
        report.file(i).local = locals[i];
        if (locals[i] == "-") {
            if (input.path().empty()) {
                if (auto spooled = input.read_all(); !spooled) {
                    report.failed(i, spooled.error());
                    return report.finish();
                }
            }
            sources[i] = input.path();
        }
    }
    with_retries(output, report, locals.size(), flags,
                 [&](const TransferFlags& now, const std::vector<std::size_t>& todo) {
                     put_pass(connection, output, report, sources, names, now, todo);
                 });
    return report.finish();
}

int report_unstarted(const Output& output, const std::vector<std::string>& names,
                     const std::vector<std::string>& locals, const Error& error, bool upload)
{
    Report report(output, names.size(), upload);
    for (std::size_t i = 0; i < names.size(); ++i) {
        report.file(i).name = names[i];
        report.file(i).local = locals[i];
    }
    if (!output.json()) {
        output.error(error); // once, not once per file
    }
    for (std::size_t i = 0; i < names.size(); ++i) {
        report.file(i).error = error;
    }
    return report.finish();
}

} // namespace ferry::client
