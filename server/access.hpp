// Who may do what: the tokens of --token-file, each read-write or read-only.
// Tokens are compared by their SHA-256 with CRYPTO_memcmp over every entry,
// so neither the comparison nor the search leaks how much of a guess was
// right.
#pragma once

#include "error.hpp"

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::server {

enum class Access { read_only, read_write };

std::string_view to_string(Access access);

// What a token grants, and the name its entry gives its holder for the log
// (empty when the entry has none); never the token itself.
struct Grant {
    Access access;
    std::string label;
};

class AccessList {
public:
    // The format (README, PROTOCOL.md 4.1): one entry per line, "TOKEN rw"
    // or "TOKEN ro", optionally followed by a label (one word of letters,
    // digits and ".-_@", at most 64, naming the holder in the log) and by
    // a "#" comment. A line whose
    // first non-blank character is '#' is a comment, and blank lines are
    // skipped. A token is at least 16 characters, never begins with '#' and
    // appears once: a second entry of the same token is an error naming
    // both lines, not a silent "last line wins". A comment line that reads
    // like an entry of a token beginning with '#' is accepted with a warning.
    // The text is UTF-8 without a byte order mark or NUL; a token's length
    // is counted in code points, and each is visible (Unicode categories
    // L, M, N, P, S). Errors name the line and never echo a token.
    static Result<AccessList> parse(std::string_view text);
    // Reads and parses `path`, never waiting on it (operator_file.hpp). A
    // file that anyone but ferryd's user or root could change (its owner,
    // group or other write, ACL entries, a folder above it) is refused, one
    // others may read is accepted with a warning.
    static Result<AccessList> load(const std::string& path);

    // The access a token grants, or nothing for an unknown token.
    std::optional<Access> check(std::string_view token) const;
    // The same, with the entry's label.
    std::optional<Grant> grant(std::string_view token) const;
    std::size_t size() const { return entries_.size(); }
    // What is odd but not wrong about the file, one sentence each.
    const std::vector<std::string>& warnings() const { return warnings_; }

private:
    struct Entry {
        std::array<unsigned char, 32> digest;
        Access access;
        std::string label;
        int line;
    };
    std::vector<Entry> entries_;
    std::vector<std::string> warnings_;
};

// The tokens in force, shared by every worker. SIGHUP re-reads the file and
// swaps in the new list whole; a session checks whichever list is current
// when its hello arrives, and connections already admitted keep running.
class TokenTable {
public:
    TokenTable(std::string path, AccessList list);

    std::shared_ptr<const AccessList> current() const { return current_.load(); }
    const std::string& path() const { return path_; }
    // Re-reads the file; on any error the tokens in force stay and the
    // error says why.
    Result<std::shared_ptr<const AccessList>> reload();

private:
    std::string path_;
    std::atomic<std::shared_ptr<const AccessList>> current_;
};

} // namespace ferry::server
