// The hash a transfer is checked with, chosen per get or put from what the
// server offers in hello (PROTOCOL.md 4.1):
//   sha256   - the default; cryptographic, equal to what sha256sum prints.
//   xxh3-128 - XXH3's 128-bit hash from libxxhash; many times faster, it
//              catches corruption but not tampering. Equal to xxh128sum.
// Like Sha256, the running state can be saved next to a partial file and
// restored by the same build, so a resumed transfer never re-reads its prefix.
#pragma once

#include "digest.hpp"

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct XXH3_state_s;

namespace ferry {

enum class HashKind { sha256, xxh3_128 };

// Wire names, in the order hello offers them.
std::string_view hash_name(HashKind kind);
std::optional<HashKind> hash_from_name(std::string_view name);
const std::vector<std::string>& offered_hash_names();
// Lowercase hex of the right length for this kind.
bool is_digest_hex(HashKind kind, std::string_view text);

class TransferHash {
public:
    explicit TransferHash(HashKind kind = HashKind::sha256);
    TransferHash(const TransferHash& other);
    TransferHash& operator=(const TransferHash& other);
    TransferHash(TransferHash&&) noexcept;
    TransferHash& operator=(TransferHash&&) noexcept;
    ~TransferHash();

    HashKind kind() const { return kind_; }
    void update(const void* data, std::size_t size);
    void update(std::span<const std::byte> bytes) { update(bytes.data(), bytes.size()); }
    // Lowercase hex of everything hashed so far; hashing may go on.
    std::string hex_digest() const;

    // Opaque text naming the kind and its state; restore() returns nothing
    // for anything it did not write (another build, a damaged file).
    std::string save_state() const;
    static std::optional<TransferHash> restore_state(std::string_view saved);

private:
    struct FreeXxh3 {
        void operator()(XXH3_state_s* state) const;
    };

    HashKind kind_;
    Sha256 sha256_;
    std::unique_ptr<XXH3_state_s, FreeXxh3> xxh3_;
};

} // namespace ferry
