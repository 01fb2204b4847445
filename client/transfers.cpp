#include "transfers.hpp"

#include "interrupt.hpp"
#include "local_files.hpp"
#include "operations.hpp"
#include "progress.hpp"

#include <chrono>
#include <deque>

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

// Shows each file as it ends (one file: exactly as a plain get or put
// always did), then the summary of several.
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
        if (single() || !output_.json()) {
            output_.error(single() ? error
                                   : Error{error.code, "\"" + summary_.files[index].name + "\": " + error.message});
        }
    }
    void got(std::size_t index, const GetResult& result)
    {
        FileOutcome& outcome = summary_.files[index];
        fill(outcome, result.file.size, result.hash, result.digest, result.resumed_from);
        if (single() || !output_.json()) {
            output_.got(result);
        }
    }
    void put(std::size_t index, const PutResult& result)
    {
        FileOutcome& outcome = summary_.files[index];
        fill(outcome, result.file.size, result.hash, result.digest, result.resumed_from);
        if (single() || !output_.json()) {
            output_.put(result, outcome.local);
        }
    }
    // Ctrl-C: what was not done yet is reported as not done.
    void abandon_rest(const std::deque<std::size_t>& indices, const Error& why)
    {
        for (const auto index : indices) {
            failed(index, why);
        }
    }

    bool finish()
    {
        summary_.seconds = seconds_since(start_);
        if (!single()) {
            output_.summary(summary_, upload_);
        }
        return summary_.failed() == 0;
    }

private:
    static void fill(FileOutcome& outcome, std::uint64_t size, HashKind hash, const std::string& digest,
                     std::uint64_t resumed_from)
    {
        outcome.size = size;
        outcome.moved = size - resumed_from;
        outcome.hash = hash;
        outcome.digest = digest;
        outcome.resumed_from = resumed_from;
    }

    const Output& output_;
    bool upload_;
    Clock::time_point start_;
    TransferSummary summary_;
};

Error interrupted_before_start()
{
    return Error{ErrorCode::aborted, "interrupted before it started"};
}

} // namespace

bool run_gets(Connection& connection, const Output& output, const std::vector<std::string>& names,
              const GetPlacement& placement, bool resume, HashKind hash)
{
    Report report(output, names.size(), false);
    std::vector<std::optional<PendingGet>> pending(names.size());
    std::deque<std::size_t> waiting;   // to be sent, in order
    std::deque<std::size_t> in_flight; // sent; their replies come back in this order
    for (std::size_t i = 0; i < names.size(); ++i) {
        GetOptions options;
        options.name = names[i];
        options.dest = download_path(names[i], placement);
        options.to_stdout = options.dest == "-";
        options.resume = resume;
        options.hash = hash;
        report.file(i).name = names[i];
        report.file(i).local = options.dest;
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
        ProgressBar bar(get.options.name, ProgressBar::wanted(output.json()));
        get.options.progress = [&bar](std::uint64_t done, std::uint64_t total) { bar.update(done, total); };
        auto result = finish_get(connection, get);
        bar.finish();
        get.options.progress = nullptr;
        if (result) {
            report.got(index, result.value());
            continue;
        }
        if (get.restart) {
            waiting.push_front(index);
            continue;
        }
        report.failed(index, result.error());
        if (result.error().code == ErrorCode::aborted) {
            waiting.insert(waiting.begin(), in_flight.begin(), in_flight.end());
            report.abandon_rest(waiting, interrupted_before_start());
            break;
        }
    }
    return report.finish();
}

bool run_puts(Connection& connection, const Output& output, const std::vector<std::string>& locals,
              const std::optional<std::string>& as, bool resume, HashKind hash)
{
    Report report(output, locals.size(), true);
    std::size_t next = 0;

    // Sends the request of the next file that can be opened, on a live
    // connection; nullopt when no file is left.
    const auto start_next = [&]() -> std::optional<std::pair<std::size_t, PendingPut>> {
        while (next < locals.size()) {
            const std::size_t index = next++;
            PutOptions options;
            options.local_path = locals[index];
            options.name = as.value_or(base_name(locals[index]));
            options.resume = resume;
            options.hash = hash;
            report.file(index).name = options.name;
            report.file(index).local = options.local_path;
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
        ProgressBar bar(put.options.name, ProgressBar::wanted(output.json()));
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
            report.put(index, committed.value());
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
    return report.finish();
}

} // namespace ferry::client
