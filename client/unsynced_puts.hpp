// Uploads the server published with their folder's fsync deferred (a
// commit's defer_sync, PROTOCOL.md 4.5), held on one connection until its
// sync request (4.14) answers for them: only then is such a file counted
// sent. Used by a push (sync.cpp) and by a several-file put (transfers.cpp).
#pragma once

#include "connection.hpp"
#include "error.hpp"
#include "operations.hpp"

#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

namespace ferry::client {

class UnsyncedPuts {
public:
    // How many files a connection leaves unsynced before it asks for a
    // sync: the server syncs each folder once per sync however many of them
    // went there (and skips one another connection's sync covered), so the
    // fewer syncs the fewer fsyncs; but a file counts as sent only once its
    // sync is answered, and a lost connection sends again those it held.
    static constexpr std::size_t kLimit = 64;

    // A commit's result: `sent` at once where the server synced it, else
    // held for the next settle().
    void committed(std::size_t index, TransferResult result,
                   const std::function<void(std::size_t, TransferResult)>& sent);
    // Whether the commit about to be read is the one after which a sync is
    // due: the caller then sends no next put before settle().
    bool sync_due() const { return held_.size() + 1 >= kLimit; }
    // False once a sync failed on this connection: its later commits sync
    // their own folders, so that a folder whose fsync fails fails only its
    // own files, not every file of a batch with it.
    bool deferring() const { return !sync_failed_; }
    // Asks for the sync (on an open connection; a closed one lost the
    // server's promise with it) and hands each held file to `sent`, or,
    // with the error, to `failed` ("published, but not made durable"). After
    // Ctrl-C each goes to `interrupted` instead, as a file not started does:
    // one line per file would bury the summary, and ferryd syncs them as
    // the connection closes, so the next run finds them in place.
    void settle(Connection& connection, const std::function<void(std::size_t, TransferResult)>& sent,
                const std::function<void(std::size_t, const Error&)>& failed,
                const std::function<void(std::size_t)>& interrupted);

private:
    std::vector<std::pair<std::size_t, TransferResult>> held_;
    bool sync_failed_ = false;
};

} // namespace ferry::client
