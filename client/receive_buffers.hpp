// Memory a Connection may read into instead of its own buffer, so that the
// bytes of data frames can be handed on (to a hashing or writing thread)
// where they were received, without a copy (Connection::lend_buffers).
#pragma once

#include <cstdint>
#include <span>

namespace ferry::client {

class ReceiveBuffers {
public:
    virtual ~ReceiveBuffers() = default;
    // The connection has decoded every byte it read into `used` (empty the
    // first time) and needs fresh memory: returns memory it may overwrite,
    // waiting until some is free. `used` stays the lender's: the pieces of
    // data frames handed out of it stay valid until the lender is done.
    virtual std::span<std::uint8_t> next(std::span<std::uint8_t> used) = 0;
};

} // namespace ferry::client
