// What a running transfer (Download, Upload) uses of the Session that holds
// it, and the one log line it ends with.
#pragma once

#include "error.hpp"
#include "folder_sync.hpp"
#include "pool_job.hpp"
#include "transfer_hash.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::server {

class TransferHost {
public:
    // Runs a job on the pool through the session's gate (at most one at a
    // time per session; see Session::take_completion).
    virtual void submit(std::unique_ptr<PoolJob> job) = 0;
    // The job that finishes an upload (commit, abort, keep): the session
    // may run the start of the next put in it (Session::take_chained_put).
    virtual void submit_finish(std::unique_ptr<PoolJob> job) { submit(std::move(job)); }
    virtual bool job_in_flight() const = 0;
    // The version the connection speaks: a version-1 reply carries no mode.
    virtual std::uint32_t protocol_version() const = 0;
    virtual void send_json(std::string json_text) = 0;
    // Answers an error, counted and logged as every error is.
    virtual void send_error(std::optional<std::uint64_t> id, const Error& error) = 0;
    // A commit published with its folder's sync deferred: the session holds
    // it for the connection's next sync request (PROTOCOL.md 4.14).
    virtual void defer_folder_sync(PendingFolderSync pending) = 0;
    // An upload's chunk reached the disk: input held back may flow again.
    virtual void input_room() = 0;
    // The transfer failed in a way that ends the connection (its error is
    // sent already); the session closes once the transfer is done.
    virtual void end_connection() = 0;
    // Whether the connection is ending already (end_connection() then does
    // nothing more).
    virtual bool closing() const = 0;
    // The transfer's work is done (published, sent, kept or failed): its
    // slot goes back BEFORE the last reply, because a client may start its
    // next transfer on another connection (another worker's thread) the
    // moment it reads that reply, and must not find this slot still taken.
    virtual void release_slot() = 0;
    // The transfer has said its last word: the session drops it, which
    // destroys the caller, so this is the last thing a transfer calls.
    virtual void transfer_ended() = 0;

protected:
    ~TransferHost() = default;
};

// The `transfer` line a get or put ends with: written exactly once, by its
// finish, or (cut short) when the transfer is dropped.
class TransferLine {
public:
    // `token_label`: the label of the token that said hello, "" if none.
    TransferLine(const std::string& peer, std::string_view op, std::string name, std::string token_label)
        : peer_(peer), op_(op), name_(std::move(name)), token_label_(std::move(token_label))
    {
    }

    bool written() const { return written_; }
    // Finished and checked: names the hash and its digest.
    void ok(std::uint64_t bytes, HashKind hash, std::string_view digest);
    // Failed, aborted or interrupted: `result` is a wire error code or a
    // word ("aborted", "interrupted"), `why` says more.
    void ended(std::uint64_t bytes, std::string_view result, std::string_view why);

private:
    const std::string& peer_;
    std::string_view op_;
    std::string name_;
    std::string token_label_;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    bool written_ = false;
};

} // namespace ferry::server
