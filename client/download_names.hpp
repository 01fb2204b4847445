// The local names of one command's downloads, planned before any byte is
// written. A download to DEST uses DEST (its final name), its part
// (part_path), the part's sidecar (state_path) and the sidecar's fresh
// temporaries (SIDECAR.tmp-XXXXXX). Two downloads of one command that
// share any of these names, in any role, would write, resume or publish
// each other's bytes: the later one is refused (name_clash) before it
// starts, and the others go on.
#pragma once

#include "status.hpp"

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>

namespace ferry::client {

// Two downloads of one command that would share a local name.
struct NameClash {
    std::string remote; // the refused download's path on the server
    std::string other;  // the path on the server of the download that keeps the name
    std::string local;  // the local name both would use
    // The name_clash error, each server path as `shown` writes it (from the
    // root for --json, from the shell's current folder for its lines), so
    // that the advice it gives ("get X on its own") is a path the user can
    // type where they are.
    Error error(const std::function<std::string(const std::string&)>& shown) const;
};

class DownloadNames {
public:
    // Claims the names of the download of `remote` (a path on the server)
    // to the local path `dest`; the clash when one of them is already
    // another download's. Folders are told apart by identity (device and
    // inode), so two spellings of one folder match.
    std::optional<NameClash> claim(const std::string& remote, const std::string& dest);

    // Whether `dest`'s last name is one of a download's working names
    // (local_tree.hpp's is_part_name): such a file yields to the download
    // whose part it would be, so a command is planned with them last.
    static bool is_working_name(const std::string& dest);

private:
    // A name in a folder: (device, inode, the folder's path when it cannot
    // be looked at yet, the name).
    using Key = std::tuple<dev_t, ino_t, std::string, std::string>;
    // Each claimed name -> the remote path that claimed it.
    std::map<Key, std::string> names_;
    // Each claimed sidecar -> its remote path: names starting with
    // SIDECAR.tmp- are that download's temporaries.
    std::map<Key, std::string> sidecars_;
};

} // namespace ferry::client
