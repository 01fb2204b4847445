#include "unsynced_puts.hpp"

#include "interrupt.hpp"
#include "remote_tree.hpp"

namespace ferry::client {

void UnsyncedPuts::committed(std::size_t index, TransferResult result,
                             const std::function<void(std::size_t, TransferResult)>& sent)
{
    if (result.synced) {
        sent(index, std::move(result));
    } else {
        held_.emplace_back(index, std::move(result));
    }
}

void UnsyncedPuts::settle(Connection& connection, const std::function<void(std::size_t, TransferResult)>& sent,
                          const std::function<void(std::size_t, const Error&)>& failed,
                          const std::function<void(std::size_t)>& interrupted)
{
    if (held_.empty()) {
        return;
    }
    Result<SyncReply> synced =
        Error{ErrorCode::connection_lost, "the connection was lost before the server made the file durable"};
    if (connection.is_open() && !ferry::client::interrupted()) {
        synced = sync_deferred(connection);
    }
    const bool stopped = !synced && ferry::client::interrupted();
    if (!synced && connection.is_open()) {
        sync_failed_ = true; // the server answered, with a failure
    }
    for (auto& [index, result] : std::exchange(held_, {})) {
        if (synced) {
            sent(index, std::move(result));
        } else if (stopped) {
            interrupted(index);
        } else {
            failed(index, Error{synced.error().code, "published, but not made durable: " + synced.error().message});
        }
    }
}

} // namespace ferry::client
