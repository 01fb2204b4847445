// The transfer hash: SHA-256 of a whole file, computed incrementally. Its
// running state can be saved and restored so that a resumed transfer carries
// on hashing where it stopped instead of re-reading the bytes it already has.
#pragma once

#include "hex.hpp"

#include <openssl/sha.h>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ferry {

class Sha256 {
public:
    Sha256();

    void update(std::span<const std::byte> bytes);
    void update(const void* data, std::size_t size);

    // Lowercase hex digest of everything hashed so far; the state is left as
    // it was, so hashing may go on afterwards.
    std::string hex_digest() const;

    // An opaque, versioned text form of the running state. It is only read
    // back by the same build of OpenSSL on the same architecture, which is
    // where resume state lives (next to the partial file it describes);
    // restore() refuses anything else and callers then start over.
    std::string save_state() const;
    static std::optional<Sha256> restore_state(std::string_view saved);

private:
    SHA256_CTX ctx_;
};

// Whether `text` is exactly `digits` lowercase hex digits, the form the wire
// and the state files use for digests.
bool is_lower_hex(std::string_view text, std::size_t digits);
bool is_sha256_hex(std::string_view text);

} // namespace ferry
