// Server-wide numbers shared by every worker loop: what the stats operation
// reports, and the connection and transfer limits, which hold for the whole
// process however many loops accept connections. Counts are atomics; the
// two maps take a mutex (an error reply or an accepted connection is rare
// next to the bytes moved).
#pragma once

#include "error.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ferry::server {

struct Config;

// One running get or put, as the server-wide slot accounting sees it. The
// session's loop writes `slow_rate`; any loop may set `preempted` (under
// Counters' mutex); the owner reads it at its next sweep.
struct TransferTicket {
    explicit TransferTicket(std::string client) : address(std::move(client)) {}
    const std::string address;
    // Bytes per second over the transfer's last complete window when that
    // was below Config::min_rate, else -1: only such a transfer can lose its slot.
    std::atomic<std::int64_t> slow_rate{-1};
    // Its slot went to a waiting transfer; it must end (too_slow).
    std::atomic<bool> preempted{false};
    // An upload's disk space reserved for bytes it has not received yet
    // (PROTOCOL.md 4.5, "Disk space"), as its loop last saw it.
    std::atomic<std::uint64_t> reserved{0};
    // Its reserved space went to a put the disk refused; it must end
    // (too_slow), kept, which gives the space back.
    std::atomic<bool> space_taken{false};
};

class Counters {
public:
    const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::atomic<std::size_t> active_transfers{0};
    std::atomic<std::uint64_t> transfers_total{0};
    std::atomic<std::size_t> connections_now{0};
    std::atomic<std::uint64_t> connections_total{0};
    std::atomic<std::uint64_t> bytes_in{0};  // file bytes received by puts
    std::atomic<std::uint64_t> bytes_out{0}; // file bytes sent by gets

    void count_error(std::string_view code);
    std::map<std::string, std::uint64_t> errors() const;

    // Counts a new connection from `address` in, or says which limit
    // refuses it (server_full, address_limit).
    std::optional<Error> admit(const std::string& address, const Config& config);
    void release(const std::string& address);

    // Takes a transfer slot for a client at `address`: a free one, or, when
    // every slot or the address's share is taken, the slot of the slowest
    // transfer that reported itself too slow (which its own loop then cuts
    // with too_slow). Refuses with too_many_transfers when neither exists.
    Result<std::shared_ptr<TransferTicket>> take_transfer(const std::string& address, const Config& config);
    // For a put refused for space, `needed` bytes short: ends the uploads
    // that hold reserved space and reported themselves too slow
    // (slow_rate), slowest first until they hold `needed`, as a slot goes
    // to a waiting transfer; none at all when all of them together hold
    // less (ending them would not make the put fit). Each ends with
    // too_slow at its loop's next sweep and is kept, which gives its space
    // back. Uploads taken before and not ended yet count first. The bytes
    // coming back so; 0: not enough can come back, and none was taken.
    std::uint64_t take_slow_reservations(std::uint64_t needed);
    // Gives a slot back when its transfer ends (a preempted one was already
    // handed over, so it only leaves the register).
    void give_back_transfer(const std::shared_ptr<TransferTicket>& ticket);

private:
    mutable std::mutex mutex_;
    std::map<std::string, std::uint64_t> errors_;
    std::unordered_map<std::string, std::size_t> connections_per_address_;
    // Running transfers (preempted ones included until they end) and the
    // slots each address holds; changed only under mutex_.
    std::vector<std::shared_ptr<TransferTicket>> transfers_;
    std::unordered_map<std::string, std::size_t> transfers_per_address_;
};

} // namespace ferry::server
