// What a listing from a server may hold (PROTOCOL.md 4.2 and 5): a client
// checks every entry once, as its page arrives, before any name is shown,
// matched or used as a local path. A server that breaks a rule broke the
// protocol, whatever the command that asked: the listing as a whole is
// refused, with the first offending entry named.
//
// The rules: each name is a name of section 5 (a non-recursive listing:
// one component) or, in a recursive listing, a path of 5.1 whose folder
// was listed, as a folder, before it; the listed folder's path and the
// name together keep within 5.1's bounds; no name twice. A folder named in
// "holding_unlisted" or "unreadable_folders" is the listed folder ("") or
// one the listing gave.
// Pure: no I/O; the client's remote_tree and operations feed it.
#pragma once

#include "error.hpp"
#include "messages.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

namespace ferry {

// The most a client takes in one listing, all its pages together: a server
// could otherwise send pages of new names forever and grow the client's
// memory without bound, each page being progress (PROTOCOL.md 4.2, "What a
// client may rely on"). Five million entries (a real tree of millions of
// files still lists) and 512 MiB of their names: about 1 GiB of the
// client's memory with names of a usual length, 2 GiB at most.
// "holding_unlisted" and "unreadable_folders" items count as entries too.
struct ListingLimits {
    std::uint64_t entries = 5'000'000;
    std::uint64_t name_bytes = 512ULL * 1024 * 1024;
};

class ListingCheck {
public:
    // A listing of the folder `path` ("" is the root), recursive or not.
    ListingCheck(std::string path, bool recursive, ListingLimits limits = {});

    // The reason the entry cannot be in this listing (its message names
    // it, printable), or nothing; an entry that passes is remembered.
    std::optional<Error> entry(const FileInfo& file);
    // The same for a folder named in a page's "holding_unlisted".
    std::optional<Error> holding(std::string_view folder);
    // The same for a folder named in a page's "unreadable_folders".
    std::optional<Error> unreadable(std::string_view folder);

private:
    // The rule of both fields that name folders (`field`, for the message).
    std::optional<Error> named_folder(std::string_view field, std::string_view folder);

    // Why `name` breaks sections 5 and 5.1 for this listing, if it does.
    std::optional<std::string> broken_name(std::string_view name) const;

    // Past the limits once `name` is counted, if it is.
    std::optional<Error> over_limits(std::string_view name);

    std::string path_;
    bool recursive_;
    ListingLimits limits_;
    std::uint64_t entries_ = 0;
    std::uint64_t name_bytes_ = 0;
    std::unordered_set<std::string> names_;   // every entry so far
    std::unordered_set<std::string> folders_; // those that are folders
};

} // namespace ferry
