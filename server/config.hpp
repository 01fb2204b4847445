#pragma once

#include "frame.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ferry::server {

// Everything an operator can tune; main.cpp maps flags onto it.
struct Config {
    std::string root = "files";
    std::string listen = "127.0.0.1:7021";
    std::uint32_t max_control_frame = kDefaultMaxControlFrame;
    // Kept uploads older than this are deleted (on start-up and hourly).
    std::chrono::seconds partial_ttl{24 * 60 * 60};
    // Bytes of one data frame the server sends, and so of one file read.
    std::size_t chunk_size = kPreferredDataChunk;
    // Stop reading the file while this much is queued on the socket.
    std::size_t send_high_water = 1024 * 1024;
    // Stop reading the socket while this much upload data waits for the disk.
    std::size_t receive_high_water = 2 * 1024 * 1024;
};

} // namespace ferry::server
