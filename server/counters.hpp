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
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ferry::server {

struct Config;

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

    // Takes one of Config::max_transfers, unless all are taken.
    bool try_take_transfer(std::size_t max_transfers);
    void give_back_transfer() { --active_transfers; }

private:
    mutable std::mutex mutex_;
    std::map<std::string, std::uint64_t> errors_;
    std::unordered_map<std::string, std::size_t> connections_per_address_;
};

} // namespace ferry::server
