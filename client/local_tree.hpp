// A local folder's tree, walked as put -r (and sync) send it: regular files
// and folders only, never through a symbolic link. Each folder is opened
// beneath the one before it with O_NOFOLLOW | O_DIRECTORY, and entries are
// looked at with fstatat(AT_SYMLINK_NOFOLLOW), so a symlink (or a folder
// swapped for one during the walk) is never entered. What cannot be sent is
// skipped with the reason: a symlink, a FIFO, a device or socket, a name the
// server would refuse (a hidden name, one not UTF-8 or not NFC...), a
// download's .ferry-part file, a folder deeper than kMaxTreeDepth. What
// cannot be read (a folder it cannot open or list, an entry it cannot
// stat) is apart: unknown is not absent, so it is an error for the caller,
// and sync's --delete never takes what it holds for extra.
#pragma once

#include "local_files.hpp"
#include "messages.hpp"
#include "names.hpp"
#include "status.hpp"

#include <time.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::client {

// As deep as a server path goes (PROTOCOL.md 5: 64 components).
inline constexpr std::size_t kMaxTreeDepth = 64;

// A file time in ns since the Unix epoch, saturated past 1677 and 2262
// (sys::nanoseconds_since_epoch).
std::int64_t nanoseconds(const struct ::timespec& time);
// An entry's permission bits with the set-ID and sticky bits (st_mode & 07777).
std::uint32_t permission_bits(const struct ::stat& st);

// The permission bits of a sent tree's folders (put -r, sync's push), for
// the folder_modes (PROTOCOL.md 4.10) of the requests that make them on the
// server: each made folder gets its source's mode, as cp -r, scp -r and
// rsync make a new folder, never 0777 less the umask, which would open a
// 0700 folder (and the 0644 files in it) to every user.
class TreeFolderModes {
public:
    // `top`: the mode of the tree's top folder; none where the tree goes to
    // the server's root (nothing to make) or its mode is not known.
    explicit TreeFolderModes(std::optional<std::uint32_t> top) : top_(top) {}
    // The folder `path` (relative to the top, '/' between components).
    void add(const std::string& path, std::uint32_t mode) { modes_.emplace(path, mode); }
    // For a request that makes `folder` (relative to the top, "" for the top
    // itself; a put's file's folder, or a mkdir's path): its mode, its
    // parent's and so on up to the top's, returned top first. They stop at
    // the first folder whose mode is not known: aligned to the path's end,
    // what lies above them gets the server's 0777.
    FolderModes of(const std::string& folder) const;
    // The mode of the folder `path` itself ("" the top's), if known.
    std::optional<std::uint32_t> mode_of(const std::string& path) const;
    // How many of `folders` (paths as for mode_of, "" the top) keep their
    // group or other users from reading or searching them (a known mode
    // without 0055): those a server that ignores folder_modes would make
    // wider (under the usual umask 022) if it made them.
    std::size_t closed_among(const std::vector<std::string>& folders) const;
    // The paths of every folder of the tree, "" the top where its mode is known.
    std::vector<std::string> folders() const;

private:
    std::optional<std::uint32_t> top_;
    std::map<std::string, std::uint32_t> modes_;
};

struct LocalEntry {
    std::string path; // relative to the walked folder, components joined by '/'
    bool folder = false;
    std::uint64_t size = 0;
    std::int64_t mtime = 0; // seconds since the Unix epoch
    // As the walk saw it (fstatat, not following): a file is sent only if
    // the file opened to send it is this one (open_listed_file).
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    // Its times in ns as the walk saw them: a write since moves both, a
    // chmod or link the change time (a pull's --delete removes a file only
    // if neither moved, remove_local).
    std::int64_t mtime_ns = 0;
    std::int64_t ctime_ns = 0;
    // Its permission bits as the walk saw them (st_mode & 07777): a folder
    // made for it elsewhere gets them (folder_create_mode_of).
    std::uint32_t mode = 0;
};

struct SkippedEntry {
    std::string path; // relative, as above
    std::string why;
    bool folder = false; // unreadable: a folder it could not open or list (else an entry of unknown kind)
};

// Each folder's entry comes before what is inside it; a folder's entries
// are sorted by name.
struct LocalTree {
    std::vector<LocalEntry> entries;
    // Left out on purpose (a link, a FIFO, a refused name...): a note.
    std::vector<SkippedEntry> skipped;
    // What the walk could not read, whatever the errno (EACCES, EIO...): a
    // folder it could not open or list, an entry it could not stat. What
    // it is or holds is unknown: each is an error for put -r and sync, and
    // nothing at or below it may be taken for absent (rsync likewise skips
    // deletion after an I/O error). `why` says what failed, without the path.
    std::vector<SkippedEntry> unreadable;
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

// How deep and how long a path below the walked folder may be: what lies
// past either is skipped, with the reason. A server counts its bounds
// (PROTOCOL.md 5.1) from its root, so a tree synced with a server folder
// `remote` has those bounds less what `remote` takes (bounds_below).
struct TreeBounds {
    std::size_t depth = kMaxTreeDepth;  // components
    std::size_t bytes = kMaxPathBytes; // bytes of the relative path
};
// The bounds of a tree that is the server's folder `remote` ("" the root).
TreeBounds bounds_below(const std::string& remote);

// Walks the folder `root` (the folder itself may be reached through a
// symbolic link: the user named it; nothing below it is). Fails only when
// `root` itself cannot be opened or listed (a local_io Error naming it); an
// unreadable folder below it is one of LocalTree::unreadable.
Result<LocalTree> walk_local_tree(const std::string& root, TreeBounds bounds = {});

// A regular file of a walked tree, as the walk listed it. Between the walk
// and the send, a folder of the tree or the file itself may be swapped for
// a symbolic link (or another file): what is sent must still be the very
// file listed, never what a link leads to, so put -r and sync's push open
// it by this, not by its path.
struct ListedFile {
    std::string root; // the walked folder, as given to walk_local_tree
    std::string path; // relative to `root`, as LocalEntry::path
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    // As LocalEntry's; 0 where the caller did not record them.
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::int64_t ctime_ns = 0;
};

// Opens a listed file for reading (O_NONBLOCK, as prepare_put's open): each
// folder below `root` one name at a time with O_NOFOLLOW|O_DIRECTORY
// (open_tree_folder), the file itself with O_NOFOLLOW, then its fstat must
// show a regular file with the listed device and inode. Anything else is a
// local_io Error naming `shown` (the path as the user sees it) and saying
// that it changed since it was listed (gone, a link, not a regular file,
// another file), except an open refused while the path still leads to what
// was listed (EMFILE, EACCES, EIO: Error::local_errno), which is that
// error, naming `shown` too; nothing is followed.
//
// With `folders` (a command's, shared by the files it sends), the file's
// folder is taken from there, walked to as above only the first time: a
// tree of many files in few folders costs one walk per folder, not one per
// file (a push of 2,000 files three levels deep spent 43% of the client's
// system calls walking to their folders again). A folder swapped for a link
// after its walk is not followed either: the file is opened in the folder
// held, the one the listing read, and must still be the very file listed.
// So of a folder moved away during the push, the files that still go are
// those opened while it is held (HeldFolders keeps a bounded number, then
// walks again); never a file from anywhere else.
//
// `consequence` ends a change's message: what became of the file ("not
// sent" for a push; a pull that retimes an equal file says it is left).
Result<LocalFile> open_listed_file(const ListedFile& listed, const std::string& shown, HeldFolders* folders = nullptr,
                                   std::string_view consequence = "not sent");

// The local_io Error of a listed file found changed: "\"SHOWN\" changed
// since it was listed: HOW; CONSEQUENCE".
Error changed_since_listed(const std::string& shown, const std::string& how, std::string_view consequence);

} // namespace ferry::client
