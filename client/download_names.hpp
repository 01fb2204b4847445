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

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace ferry::client {

// Two downloads of one command that would share a local name.
struct NameClash {
    std::string remote;      // the refused download's path on the server
    std::string other;       // the path on the server of the download that keeps the name
    std::size_t other_owner; // that download's owner (DownloadNames::claim)
    std::string local;  // the local name both would use
    // The name_clash error, naming the refused download `remote_shown` and
    // the other `other_shown`: each as the report names its file (from the
    // root for --json, from the shell's current folder for its lines, as
    // typed where that had a '..'), so that the advice it gives ("get X on
    // its own") is a path the user can type where they are.
    Error error(const std::string& remote_shown, const std::string& other_shown) const;
};

class DownloadNames {
public:
    // Where a download's names live: its local path's folder, told apart by
    // identity (device and inode) so that two spellings of one folder
    // match, or by its path where it cannot be looked at yet.
    using Place = std::tuple<dev_t, ino_t, std::string>;
    // The place of the local path `dest` (one stat(2) of its folder).
    static Place place_of(const std::string& dest);

    // Claims for `owner` (a download's index in its command) the names of
    // the download of `remote` (a path on the server) to the local path
    // `dest`, whose folder is `place` (place_of); the clash when one of
    // them is already another download's, and then nothing is claimed.
    std::optional<NameClash> claim(std::size_t owner, const std::string& remote, const std::string& dest,
                                   const Place& place);
    // Lets go of every name `owner` claimed.
    void release(std::size_t owner);

    // Whether `dest`'s last name is one of a download's working names
    // (local_tree.hpp's is_part_name): such a file yields to the download
    // whose part it would be, so a command is planned with them last.
    static bool is_working_name(const std::string& dest);

private:
    // A name in a folder: (device, inode, the folder's path when it cannot
    // be looked at yet, the name).
    using Key = std::tuple<dev_t, ino_t, std::string, std::string>;
    struct Owner {
        std::size_t owner;
        std::string remote;
    };
    // Each claimed name -> the download that claimed it.
    std::map<Key, Owner> names_;
    // Each claimed sidecar -> its download: names starting with
    // SIDECAR.tmp- are that download's temporaries.
    std::map<Key, Owner> sidecars_;
    // Each owner -> its names (the last one its sidecar), for release.
    std::map<std::size_t, std::vector<Key>> owned_;
};

// A command's downloads and who holds which local names. One that clashes
// with a download planned before it is not refused at once but waits
// behind it: should that download fail before any byte of it was written
// (a file missing on the server, a path through a file), its names were
// never used, and the first waiting download that can claim them now
// goes instead, as a command that had not named the failed file would
// have sent it. Those still waiting once the transfers are over are the
// refused ones (name_clash).
class ClaimedDownloads {
public:
    struct Download {
        std::size_t index;  // the download's index in its command
        std::string remote; // its path on the server
        std::string dest;   // its local path
    };
    struct Waiting {
        Download download;
        NameClash clash;            // with a download that holds one of its names
        std::size_t position = 0;   // in claim order
        DownloadNames::Place place; // of dest
    };

    // Claims the names of each of `downloads` in their order, except
    // that a file named like another's working files (is_working_name)
    // yields to it: it claims last. The indices of those that hold their
    // names.
    std::vector<std::size_t> claim(std::vector<Download> downloads);
    // Download `index` failed before any byte of it was written: its names
    // are let go, and the waiting downloads that claim them now (in claim
    // order) are returned, to be sent. A few claims, whatever the number
    // waiting (one queue per local path, below).
    std::vector<std::size_t> failed_unwritten(std::size_t index);
    // The downloads still waiting, in claim order.
    std::vector<Waiting> waiting() const;

private:
    // Downloads waiting behind one holder with one local path, so with the
    // very same names, in claim order: when the holder lets go, the first
    // that claims them leaves the rest waiting behind itself, unasked.
    using Queue = std::deque<Waiting>;
    void wait_behind(std::size_t holder, Queue queue);

    DownloadNames names_;
    std::map<std::size_t, std::vector<Queue>> behind_; // holder -> its queues
};

} // namespace ferry::client
