// Who may do what: the tokens of --token-file, each read-write or read-only.
// Tokens are compared by their SHA-256 with CRYPTO_memcmp over every entry,
// so neither the comparison nor the search leaks how much of a guess was
// right.
#pragma once

#include "error.hpp"

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::server {

enum class Access { read_only, read_write };

std::string_view to_string(Access access);

class AccessList {
public:
    // One token per line: "TOKEN rw" or "TOKEN ro"; blank lines and lines
    // starting with '#' are skipped. Tokens are at least 16 characters.
    static Result<AccessList> parse(std::string_view text);
    static Result<AccessList> load(const std::string& path);

    // The access a token grants, or nothing for an unknown token.
    std::optional<Access> check(std::string_view token) const;
    std::size_t size() const { return entries_.size(); }

private:
    struct Entry {
        std::array<unsigned char, 32> digest;
        Access access;
    };
    std::vector<Entry> entries_;
};

} // namespace ferry::server
