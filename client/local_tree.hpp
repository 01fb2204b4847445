// A local folder's tree, walked as put -r (and sync) send it: regular files
// and folders only, never through a symbolic link. Each folder is opened
// beneath the one before it with O_NOFOLLOW | O_DIRECTORY, and entries are
// looked at with fstatat(AT_SYMLINK_NOFOLLOW), so a symlink (or a folder
// swapped for one during the walk) is never entered. What cannot be sent is
// skipped with the reason: a symlink, a FIFO, a device or socket, a name the
// server would refuse (a hidden name, one not UTF-8 or not NFC...), a
// download's .ferry-part file, a folder deeper than kMaxTreeDepth.
#pragma once

#include "status.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ferry::client {

// As deep as a server path goes (PROTOCOL.md 5: 64 components).
inline constexpr std::size_t kMaxTreeDepth = 64;

struct LocalEntry {
    std::string path; // relative to the walked folder, components joined by '/'
    bool folder = false;
    std::uint64_t size = 0;
    std::int64_t mtime = 0; // seconds since the Unix epoch
};

struct SkippedEntry {
    std::string path; // relative, as above
    std::string why;
};

// Each folder's entry comes before what is inside it; a folder's entries
// are sorted by name.
struct LocalTree {
    std::vector<LocalEntry> entries;
    std::vector<SkippedEntry> skipped;
};

// Why a local entry named `name` is never sent (nor, by sync --delete,
// removed): a name the server would refuse, or a download's part or its
// state sidecar; nullopt for a name that is sent. The walk and sync's
// removal of a folder ask the same question, so that they never disagree
// on what sync can see.
std::optional<std::string> unsent_name(const std::string& name);

// Whether `name` is a download's part, its state or the state's temporary
// (NAME.ferry-part, NAME.ferry-part.state, NAME.ferry-part.state.tmp-XXXXXX,
// and .tmp of older builds): names a pull never publishes or deletes.
bool is_part_name(const std::string& name);

// Walks the folder `root` (the folder itself may be reached through a
// symbolic link: the user named it; nothing below it is). Fails only when
// `root` cannot be opened as a folder; an unreadable folder below it is a
// skipped entry, with the reason.
Result<LocalTree> walk_local_tree(const std::string& root);

} // namespace ferry::client
