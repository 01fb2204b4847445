// The names of the server's own files in the root (PROTOCOL.md 4.7), defined
// once: the upload makes them from these functions and the expiry sweep
// removes only names that parse_partial_entry() recognises, so that a file
// of the server's user that merely begins with the prefix (a note, a backup
// copy) is never taken for one of ours.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ferry::server {

inline constexpr std::string_view kPartialPrefix = ".ferry-partial-";
// A token is 32 lowercase hexadecimal digits (128 bits of SHA-256).
inline constexpr std::size_t kTokenLength = 32;

// The files of one upload.
enum class PartialFile {
    data,  // .ferry-partial-<token>: the bytes received
    state, // .ferry-partial-<token>.state: what is durable (protocol/resume_state)
    spare, // .ferry-partial-<token>.state.tmp: the next state is written here
    // .ferry-partial-<key>.publish: a commit's publish record, named by the
    // target's path alone (publish_record_key), so that any commit of that
    // path, whatever its size and maker, finds it with one look (PROTOCOL.md
    // 4.7); the key is never an upload's token (another hash domain).
    record,
};

std::string partial_entry(std::string_view token, PartialFile file);

// The key of the publish record of `path` (a path in the served folder):
// 32 hexadecimal digits of SHA-256 over the path, in a domain of its own.
std::string publish_record_key(std::string_view path);

struct PartialEntry {
    std::string token;
    PartialFile file = PartialFile::data;
};

// The token and kind of an entry name ferryd makes, or made in an older
// build (the `.ferry-partial-name-<32 hex>` lock files before tokens named
// a path, taken as data files of the token "name-<hex>"); nothing for any
// other name.
std::optional<PartialEntry> parse_partial_entry(std::string_view entry);

} // namespace ferry::server
