// The local side of `ferry sync`: the tree under a local folder, read
// without following a symbolic link, and the few changes a pull makes to it
// besides publishing files (make a folder, remove what --delete removes,
// set an mtime), each on descriptors opened with O_NOFOLLOW so that a link
// inside the tree never leads the sync out of it.
#pragma once

#include "local_tree.hpp"
#include "status.hpp"
#include "sync_plan.hpp"
#include "transfer_hash.hpp"

#include <cstdint>
#include <ctime>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace ferry::client {

struct LocalScan {
    // Files and folders; and, as kind `other`, what is not sent: symbolic
    // links, FIFOs, devices, names a Ferry server cannot hold (hidden,
    // invalid), the parts of interrupted downloads (NAME.ferry-part and its
    // .state), folders too deep. The plan never puts anything in their
    // place nor removes them: on a pull's receiving side a link stays a link
    // and a part stays for the next pull to resume from.
    TreeListing entries;
    // For people, on the sending side: each left out and why.
    std::vector<std::string> notes;
    // What the scan could not read (local_tree.hpp's LocalTree::unreadable):
    // in `entries` as kind `other` at its path, so that nothing is sent,
    // placed or removed there; on the sending side also with the mark
    // "PATH/" (a folder holding what the listing does not show), so that a
    // push's --delete removes nothing below it either. sync reports each as
    // a local_io error.
    std::vector<SkippedEntry> unreadable;
    // The files by path, as the walk saw them: a push opens each through
    // this (open_listed_file), so that a folder or file swapped for a
    // symbolic link since the scan is never followed; a pull's --delete
    // removes a file only if it is still the one listed (remove_local).
    std::map<std::string, ListedFile> listed;
    // The folders by path, as the walk saw them (device and inode): a
    // pull's --delete removes what a folder holds only through a
    // descriptor of that very folder, and the folder itself only while it
    // is still the one listed: another folder renamed into its place since
    // the scan (empty, or holding hard links to the listed files) is left.
    std::map<std::string, ListedFile> folders;
};

enum class ScanSide { sending, receiving };

// Every entry below `root` (which must be a folder; a symbolic link naming
// it is followed, as the user named it), paths relative to it, by
// local_tree.hpp's walk, which never follows a link inside.
// `bounds`: a sync's are its server folder's (bounds_below), so that what
// the server could not hold or name is never sent, nor removed as extra.
Result<LocalScan> scan_local_tree(const std::string& root, ScanSide side, TreeBounds bounds = {});

// Makes the folder root/path through descriptors walked from `root` (a
// folder the user named, its own links followed) that follow no link below
// it; one already there is fine, anything else in its place (a symbolic
// link included) is an error. Its parent must exist and be no symbolic
// link. A folder made here gets the owner's write and search bits back
// where the umask took them (let_owner_fill). Used by sync's pull and by get -r.
// `mode`: the server's folder's permission bits, which a folder made here
// gets (folder_create_mode_of: less the umask, as cp -r and rsync make
// one), so that a 0700 folder is not opened to others; 0777 less the umask
// where the server does not say.
Status make_local_folder(const std::string& root, const std::string& path,
                         std::optional<std::uint32_t> mode = std::nullopt);
// The same, telling whether mkdirat(2) made the folder here (so that it
// was empty when made) or found one standing there already.
enum class FolderMade { made, found };
Result<FolderMade> make_or_find_local_folder(const std::string& root, const std::string& path,
                                             std::optional<std::uint32_t> mode = std::nullopt);

// Removes root/path alone, walked to as make_local_folder walks: a regular
// file (anything else there now is an error: left), or an empty folder,
// never recursively. A folder holding anything stays (`not_empty`): sync
// removes a folder's listed entries one by one first (removal_steps), so
// what it still holds is what the listing did not show (a link, a hidden
// name, a part...) or what was written there since: never removed unseen.
// `holder_changed`: the folder holding root/path (`holder`) is not the
// one listed, and `changed`: a folder step's folder itself is not (another
// folder stands at its name); either way nothing is removed.
enum class LocalRemoved { removed, absent, not_empty, holder_changed, changed };
// `listed`: the entry as the scan saw it; another file at its name is left
// (an error), never removed; another folder, `changed`. A file is removed
// by unlink_if_still (set aside under a fresh name, checked there, unlinked
// there), so that one renamed onto its name after the look stays. `holder`: the
// folder holding it as the scan saw it; the entry is looked at and removed
// through a descriptor of that folder checked to be this one (fstat: its
// device and inode), else `holder_changed`.
Result<LocalRemoved> remove_local(const std::string& root, const std::string& path, EntryKind kind,
                                  const ListedFile* listed = nullptr, const ListedFile* holder = nullptr);

// A partial download in a pull's local tree that no file of the server's
// listing will resume (its file was removed on the server since the pull
// that left it was interrupted): the part NAME.ferry-part and whatever of
// its sidecar and the sidecar's temporaries the scan found.
struct OrphanPart {
    std::string part;               // relative to the tree; maybe absent (a sidecar alone)
    std::vector<std::string> found; // the scan's entries of it, the part's own name included if found
};
// The orphans among the part names of `local` (a pull's scan): those of no
// file in `remote` (the server's listing as the pull takes it), and not
// directly in a folder the server says holds entries it does not list
// (their file may be one of those), as --delete spares that folder's extras.
std::vector<OrphanPart> orphan_parts(const TreeListing& local, const TreeListing& remote);

// What became of an orphan part (or, looked at with `dry_run`, would).
enum class OrphanEnd {
    removed,    // the part, its sidecar and the temporaries in the sidecar's format
    not_ferrys, // a file under the part's name that is not provably ferry's: left
    locked,     // a part another download holds locked (lock_part): left
};
// Removes an orphan, walked to as make_local_folder walks (no link
// followed): the part only if it is provably ferry's by the rules a resume
// uses (is_ferry_part: the mark, a sidecar written for that very file, or
// empty), and held by no other download (its lock is taken, and held while
// it is removed); its sidecar and the sidecar's temporaries only under
// remove_ferry_leftover's rule, and one of them that the rule refuses
// leaves all of them and the part (`not_ferrys`). With `dry_run`, looks
// and removes nothing.
Result<OrphanEnd> remove_orphan_part(const std::string& root, const OrphanPart& orphan, bool dry_run);

// What a kill leaves beside a pull's files that no resume needs
// (local_files.hpp, "The leftovers of a kill"): each temporary of a
// sidecar (exactly SIDECAR.tmp-XXXXXX), each sidecar whose part the
// scan did not find, and each file a removal had set aside under its
// fresh name (is_set_aside_name) when the kill came. A part with its sidecar is not among them: a part is
// worth keeping for a resume, and goes only as an orphan (orphan_parts,
// under --delete), as rsync keeps a partial file for the next run. Paths
// relative to the tree, from the scan's entries.
std::vector<std::string> stray_leftovers(const TreeListing& local);

// What became of a stray leftover (or, with `dry_run`, would).
enum class LeftoverEnd {
    removed,
    locked, // its part now stands and another download holds it locked: left
    kept,   // not this user's small regular file, not in the sidecar's format, gone, or a part stands again: left
};
// Removes one stray leftover, walked to as make_local_folder walks (no
// link followed). The proof that no live download owns it: its part is
// held by nobody, for a temporary (the part's lock is taken and held while
// the temporary goes; where no part stands, no download is writing the
// sidecar: a checkpoint is made only while its part stands), and, for a
// sidecar, no part stands at all (one that stands again is a download
// begun since, whose sidecar it may be: left). Only what
// remove_ferry_leftover's one rule allows, removed its way. A file set
// aside: removed when it is this user's regular file with one name (what a
// removal sets aside and checks), by unlink_if_still.
Result<LeftoverEnd> remove_stray_leftover(const std::string& root, const std::string& path, bool dry_run);

// What a pull's local tree can hold of the server's modification times
// (PlanOptions::held): each file system the tree spans (the synced folder's
// and any mounted inside it, by device) asked once through a scratch file
// in a folder of its own (sys/mtime_probe.hpp: unnamed where the file
// system allows, else an O_EXCL name removed at once; nothing stays), so
// that the quick check compares the server's time as this file system
// would keep it (ext4 clamps to 1901..2446, FAT rounds to 2 s). A device
// that could not be asked (a folder not writable) compares exactly. The
// function holds `scan` by reference: it must outlive it.
using HeldTime = std::function<std::int64_t(const std::string& path, std::int64_t mtime)>;
HeldTime probe_local_held_times(const std::string& root, const LocalScan& scan);

// Sets root/path's mtime (whole seconds), walked to as make_local_folder
// walks, without following a link ("" is `root` itself). For folders only:
// a file's time says its content is the sender's, so it is set only
// through set_hashed_mtime, on the very file found equal.
Status set_local_mtime(const std::string& root, const std::string& path, std::int64_t mtime);

// The transfer hash of a listed file, as hex (--checksum's local side): the
// very file the scan listed, opened as a push's send opens it
// (open_listed_file: beneath the tree's folder, no link followed, the
// listed device and inode), so that a folder swapped for a symbolic link
// since the scan never makes the skip decision rest on a file outside the
// tree. Another file there is open_listed_file's "changed since it was
// listed" Error. `shown`: the path as the user sees it.
// What the digest is of: the file hashed, as fstat showed it on its
// descriptor before and (unchanged) after the reading.
struct HashedFile {
    std::string digest;
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    timespec mtime{};
    timespec ctime{};
};
// A file written while it was hashed (its mtime or ctime moved) has no
// digest: "changed while it was hashed", an Error. `folders`: as
// open_listed_file's.
Result<HashedFile> hash_local_file(const ListedFile& listed, const std::string& shown, HashKind kind,
                                   HeldFolders* folders = nullptr);

// Gives the file found equal by its digest (`hashed`) the sender's `mtime`
// (whole seconds): only while it is still the file hashed, at its name
// (opened as open_listed_file opens it: no link followed, the listed
// device and inode), and not written since the hashing (its mtime and
// ctime as when hashed), and then through the descriptor checked. Another
// file at the name, or one written since, keeps its time, so that the next
// sync's quick check looks at it again: a local_io Error saying that it
// changed since it was listed. `folders`: as open_listed_file's.
Status set_hashed_mtime(const ListedFile& listed, const HashedFile& hashed, const std::string& shown,
                        std::int64_t mtime, HeldFolders* folders = nullptr);

} // namespace ferry::client
