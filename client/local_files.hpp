// The client's local file system work, in plain POSIX calls that never throw:
// a file descriptor that closes itself, whole reads and writes, and the
// partial download (`<dest>.ferry-part`, see part_path) with its state
// sidecar (`<dest>.ferry-part.state`). Every failure is a local_io Error naming the path.
#pragma once

#include "descriptors.hpp"
#include "resume_state.hpp"
#include "status.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>

#include <sys/stat.h>

namespace ferry::client {

inline constexpr std::string_view kPartSuffix = ".ferry-part";
inline constexpr std::string_view kStateSuffix = ".state";
// A sidecar's new version is written under SIDECAR.tmp-XXXXXX (six random
// letters or digits), a fresh name made with O_EXCL: never a name something
// else stands at, so nothing of anyone else's is opened or dropped.
inline constexpr std::string_view kStateTemporarySuffix = ".tmp-";
inline constexpr std::size_t kStateTemporaryRandom = 6;

// A download's folder, walked to once when the download is planned: a
// tree's (get -r, a wildcard's match, sync's pull) from the tree's root one
// name at a time with O_NOFOLLOW|O_DIRECTORY (HeldFolders), a typed path's
// by resolve_typed_path. It is held (GetOptions::folder) until the file is
// published: the look at the target and the part, the part's creation or
// resume, its sidecar, the attributes, the rename and the folder sync all
// go through this descriptor (the functions below that take `in`), never
// through the folder's path again: a folder on the way swapped after the
// walk (for a link, or for another folder) is not reached, so nothing
// lands anywhere but where the walk checked.
class LocalFolder {
public:
    LocalFolder(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
    LocalFolder(const LocalFolder&) = delete;
    LocalFolder& operator=(const LocalFolder&) = delete;
    ~LocalFolder();

    const std::string& path() const { return path_; } // for messages
    int fd() const { return fd_; }

private:
    std::string path_;
    int fd_;
};
// The folder of `path` (a path below `root`, which the user named and
// whose own links are followed); every folder on the way from `root` must
// be a real folder, a symbolic link is an error.
Result<std::shared_ptr<const LocalFolder>> open_tree_folder(const std::string& root, const std::string& path);
// The folders of a command's downloads, each opened once (a walk as
// open_tree_folder's, continued from the nearest folder already held) and
// shared by every file landing in it: a download takes its folder here
// when it is planned and holds it (GetOptions::folder) until its file is
// published, so no later step names the folder by a path again, and a
// tree of many files in few folders costs one descriptor per folder, not
// one walk per file and step. Safe to share between threads (sync's
// connections). It keeps at most `most` for later files (the command's
// share of its descriptor limit, descriptors.hpp); a download's own hold
// is not limited by it.
class HeldFolders {
public:
    static constexpr std::size_t kMaxHeldFolders = 256;
    explicit HeldFolders(std::size_t most = descriptor_shares().held_folders) : most_(std::max<std::size_t>(most, 1)) {}
    // The folder `dest` (a path below `root`, see open_tree_folder) lies in.
    Result<std::shared_ptr<const LocalFolder>> folder_of(const std::string& root, const std::string& dest);
    // The folder of `below`, a path relative to `root` (a listed file's,
    // ListedFile::path): "a/b/f" is in "a/b", "f" in `root` itself.
    Result<std::shared_ptr<const LocalFolder>> folder_holding(const std::string& root, const std::string& below);

private:
    Result<std::shared_ptr<const LocalFolder>> folder(const std::string& root, const std::string& below);

    std::size_t most_;
    std::mutex mutex_;
    std::map<std::pair<std::string, std::string>, std::shared_ptr<const LocalFolder>> held_;
};
// The part of `path` below the tree folder `root` ("copy" and "copy/a/b"
// give "a/b"; "." and a relative "a/b" give "a/b"), for open_tree_folder;
// nullopt when `path` is not below `root`.
std::optional<std::string> path_below(const std::string& root, const std::string& path);

class LocalFile {
public:
    LocalFile() = default;
    LocalFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
    LocalFile(LocalFile&& other) noexcept;
    LocalFile& operator=(LocalFile&& other) noexcept;
    LocalFile(const LocalFile&) = delete;
    LocalFile& operator=(const LocalFile&) = delete;
    ~LocalFile();

    // open(2) with O_CLOEXEC added.
    // With `in`: opened in that folder by path's last name (openat).
    static Result<LocalFile> open(const std::string& path, int flags, unsigned mode = 0644,
                                  const LocalFolder* in = nullptr);

    const std::string& path() const { return path_; }
    int fd() const { return fd_; }

    // Reads up to buffer.size() bytes at `offset`; 0 only at the end of the file.
    Result<std::size_t> read_at(std::uint64_t offset, std::span<std::uint8_t> buffer) const;
    // Writes all of `bytes` at the current position.
    Status write_all(std::span<const std::uint8_t> bytes);
    Status sync();
    // Starts writing the file's dirty pages to the disk without waiting
    // (sync_file_range SYNC_FILE_RANGE_WRITE): a later sync() then finds
    // most of them written. A hint: it never fails.
    void start_writeback();
    Status truncate(std::uint64_t size);
    Status seek(std::uint64_t offset);
    Result<std::uint64_t> size() const;
    // Closes now and reports a failing close (which can mean lost writes).
    Status close();

private:
    std::string path_;
    int fd_ = -1;
};

// Every path the user types (a download's -o or -C, a file put, sync's
// local folder) is resolved by resolve_typed_path, which keeps the
// kernel's fs.protected_symlinks rule everywhere (the sysctl may be off,
// and covers only sticky world-writable folders): a symbolic link on the
// way is followed only when the user running ferry (geteuid) or root owns
// it. Anyone else's could have been planted in a shared folder, to have
// ferry write, delete or upload what the planter cannot reach.
//
// The walk is on descriptors, so that what is checked is what is used: it
// starts at the working folder (or "/"), opens each name O_PATH|O_NOFOLLOW
// in the folder reached so far, looks at a link through its own descriptor
// (fstat for its owner, readlinkat(fd, "") for its text, from that one
// inode) and walks the text on from the link's folder (or "/"); ".." is
// opened in the folder held, never taken from the text. At most
// kMaxTypedLinks links, the kernel's own bound (ELOOP). openat2's
// RESOLVE_NO_SYMLINKS cannot say "follow the links of these owners", so
// the walk is done here, by hand. /dev/stdout is root's link to
// /proc/self/fd/1, the user's own: walked like any other, except where its
// text is no path ("pipe:[42]": an open file with no name), which the
// kernel follows. What the caller does next goes
// through the folder held (the `in` variants below), so a name swapped for
// a link after the walk changes nothing; a download walks once and holds
// its folder to the publish (LocalFolder above). The variants called
// without `in` walk the typed path again for that one call; a walk that
// reaches no folder there is that call's Error, naming the link (and its
// owner) or the folder it could not open: never a bare errno of a call
// made without a folder.
inline constexpr int kMaxTypedLinks = 40;
struct TypedPlace {
    std::shared_ptr<const LocalFolder> folder; // the last folder, held open for reading
    std::string leaf;                          // the name in it; empty: the path names `folder` itself
    bool followed_leaf = false;                // the last name was a link, followed
    LocalFile object;                          // with follow_leaf: an O_PATH descriptor of what stands at leaf
};
// With follow_leaf false the last name is not looked at (nor followed);
// with it true, a link there is followed like the others, and `object` is
// what the path leads to (absent: nothing stands at `leaf`). An error for
// anyone else's link names it and its uid.
Result<TypedPlace> resolve_typed_path(const std::string& path, bool follow_leaf);
// A typed folder as the start of the paths shown below it: trailing '/'
// and "/." dropped ("out/" -> "out", "new/./" -> "new"; "/" and "." stay).
// For showing and joining only: what the path names is resolve_typed_path's.
std::string folder_of_typed(std::string path);
// `name` in the local folder `folder`, as a path to show and to open from
// the working folder: "d" or "d/" with "x" is "d/x"; "." or "" with "x" is
// "x" (as rsync shows what lies in the working folder), but with "-x" is
// "./-x", so that no name is read as an option or as "-" (standard input
// or output); an empty `name` is `folder` itself. A folder is kept as
// typed ("-" with "-m" is "-/-m"): what the user typed is shown as typed,
// and the joined path starts with it (HeldFolders::folder_of).
std::string local_join(const std::string& folder, const std::string& name);
// mkdir of a typed path in the folder resolve_typed_path reaches; happy
// with a folder already there, or a link of the user's or root's to one;
// one made here is let_owner_fill'ed, and gets `mode` as make_local_folder's
// (sync_local.hpp).
Status make_typed_folder(const std::string& path, std::optional<std::uint32_t> mode = std::nullopt);
// After ferry made the folder `leaf` in `parent`: where the umask took the
// owner's read, write or search bit from it (umask 0222, 0577), they are
// given back, as POSIX mkdir -p gives the folders it makes above the last
// one u+wx: ferry goes on to make files in it, and to open it to walk and
// sync it (O_RDONLY, which needs the read bit).
// Opened without following a link (O_PATH), and
// only a folder of this user's is changed (a link swapped in, or another
// user's folder, is left); best effort, as a folder
// that stays unwritable then fails the files put in it, each saying why.
void let_owner_fill(int parent, const char* leaf);
// The folder a typed path names, resolved as above, opened O_RDONLY|O_DIRECTORY.
Result<int> open_typed_folder(const std::string& path);

using ferry::PartIdentity; // the resume state's (protocol/resume_state.hpp)
// Of an open file (fstat).
Result<PartIdentity> identity_of(const LocalFile& file);
// Of what a stat of it gave.
PartIdentity identity_of(const struct stat& st);

// The sidecar of a partial download: which remote file the part holds the
// beginning of, how many bytes of it are durable, the transfer hash's state
// of exactly those bytes (TransferHash::save_state()) and its digest, and
// the part file's identity at that checkpoint.
struct DownloadState {
    std::string name;
    std::uint64_t remote_size = 0;
    std::int64_t remote_mtime = 0;
    std::uint64_t bytes_held = 0;
    std::string digest_state;
    std::string prefix_digest; // hex digest of the first bytes_held bytes
    PartIdentity part;
};

// DEST.ferry-part, or where DEST's file name is too long for the suffixes
// (names of 228 bytes and more), .<SHA-256 of that name in hex>.ferry-part
// in DEST's folder: every valid name fits NAME_MAX either way.
std::string part_path(const std::string& dest);
std::string state_path(const std::string& dest);

// The mark of a part ferry made: an extended attribute (xattr(7)) in the
// "user." namespace, which the file's owner may set on any regular file,
// set on the new part's descriptor before its first byte. A file under a
// part's name is ferry's only if it carries the mark or its sidecar names
// that very file (is_ferry_part); anything else there is the user's.
inline constexpr const char* kPartMark = "user.ferry.part";

// Sets the mark on a part just created (fsetxattr): true once marked,
// false where the file system keeps no user extended attributes
// (ENOTSUP/EOPNOTSUPP: ramfs, some NFS and FUSE mounts), where the caller
// records the part in a sidecar instead, before its first byte.
Result<bool> mark_part(const LocalFile& part);
// Takes the mark off a part just published (through its descriptor, still
// open after the rename), so that no downloaded file carries it (nor
// passes it on when copied with its attributes); never before the rename,
// where a kill would leave a part no longer known to be ferry's. A kill
// between the rename and this leaves the mark on the published file.
// Never fails: a part that could not be marked has no mark to take off.
void unmark_part(const LocalFile& part);

// Whether `file` (open, regular, `st` its fstat) under a part's name is one
// ferry made: it is empty (a kill between its creation and its mark; no
// byte to lose), it carries the mark, or `state` (its sidecar, if one was
// read) was written for this very file: same device and inode, and the
// file was not born after the sidecar last saw it (statx's birth time,
// where the file system keeps one), so an inode number reused by a newer
// file is not taken for the part. A sidecar that names another file proves
// nothing about the one standing there.
bool is_ferry_part(const LocalFile& file, const struct ::stat& st, const DownloadState* state);

// What stands under a download's part name, looked at before anything is
// sent: nothing (the common case: one fstatat), or a part ferry made
// (replaced by create_part_file). Anything else is an Error naming the part
// and what to do about it, and is left untouched: a regular file ferry did
// not make (the user's own file that happens to have that name:
// unowned_part_error), a symbolic link, FIFO, socket, device or folder
// (foreign_part_error), none of them followed or written.
// With a part of ferry's: the server file its state names (`owner`;
// empty where it has no readable state).
enum class PartFound { absent, ferrys };
struct FoundPart {
    PartFound kind = PartFound::absent;
    std::string owner;
};
Result<FoundPart> look_at_part(const std::string& part, const std::string& state_file, const LocalFolder* in = nullptr);

// A download's fresh part file (no resume), created O_EXCL (never through
// what stands at the name) and marked as ferry's (mark_part). A part of
// ferry's found under the name is replaced (unlinked, never written
// through: it may be a hard link to another file); anything else there is
// refused as look_at_part refuses it. `mode`: its permission bits while it
// downloads (see published_mode). The result's `marked` is false where the
// file system keeps no mark: the caller must record the part in its
// sidecar before writing to it. `replaced`: the name was taken when the
// part was made, by a part of ferry's now removed (or one gone meanwhile):
// a download was cut short there, whose sidecar may stand too, whatever the
// get's plan found.
struct CreatedPart {
    LocalFile file;
    bool marked = true;
    bool replaced = false;
};
Result<CreatedPart> create_part_file(const std::string& part, const std::string& state_file,
                                     const LocalFolder* in = nullptr, unsigned mode = 0600);
// Takes the part's exclusive lock (flock LOCK_EX|LOCK_NB), held by its open
// descriptor until that closes: one download writes a part, from creation
// or resume until publish or abandonment. Another download (this process or
// another ferry) holding it is an Error saying so, at once: busy (exit
// status 6), which a retry gets past once that download is over.
Status lock_part(const LocalFile& part);
// That Error, for what stands under the part's name with `mode` (lstat's).
Error foreign_part_error(const std::string& part, unsigned mode);
// That Error, for a regular file under the part's name that ferry did not make.
Error unowned_part_error(const std::string& part);

// Whether a part or sidecar found on disk may be built on (its fstat): a
// regular file owned by this process's effective user with no other link.
// Anyone else's file, one with a second name (a hard link, whose other name
// a resume would write through) or anything else is never resumed: its name
// is dropped and the download starts over in a new file (create_part_file).
bool is_own_private_file(unsigned mode, unsigned owner, std::uint64_t links);

// What a download publishes with. It replaces a regular file at `dest`
// (looked at now, never through a link): that file's permission bits, never
// set-user-ID, set-group-ID or sticky (new bytes from the network earn no
// privilege), and, where this process may set them (as root), its owner and
// group, as `cp` onto an existing file and ferryd's upload keep them. A new
// file: as open(2) with `source_mode` (the server's file's bits, where its
// replies carry them) or else 0666 would create it, less the umask, as
// sftp and rsync's receiver make a new copy (never a set-ID or sticky bit);
// where its folder has a default ACL, that ACL decides instead
// (take_replaced_attributes).
struct PublishedMode {
    unsigned mode = 0644;
    std::optional<unsigned> owner; // uid, with `group`, set only as root
    unsigned group = 0;
    bool replaces = false; // a regular file stands at `dest`
};
PublishedMode published_mode(const std::string& dest, const LocalFolder* in = nullptr,
                             std::optional<std::uint32_t> source_mode = std::nullopt);
// published_mode from a look already taken at `dest` (fstatat without
// following): `target` its result, nullptr where nothing stands there.
PublishedMode published_mode_of(const struct ::stat* target, std::optional<std::uint32_t> source_mode);

// What the publishes of one PublishBatch (up to kPublishBatchFiles files,
// renamed one after another within milliseconds) look at once per held
// folder and reuse: that the folder has no default ACL (the common case;
// a folder that has one is read for each file, as the ACL depends on the
// file's create mode). Keyed by the held folder, which the batch's files
// keep open (and so at one address) while it runs. A default ACL given to
// the folder after its first file is published applies from the next
// batch on, as it would to a file published a moment before the change.
struct BatchFolderLooks {
    std::set<const LocalFolder*> without_default_acl;
};
// Readies a verified part to take `dest`'s place: the owner of the file it
// replaces (published_mode, read now), then exactly that file's access ACL
// (sys/posix_acl.hpp: none where it has none, so that an ACL the part
// inherited from its folder's default ACL cannot widen it), then its mode.
// The ACL goes before the mode: setting it gives the part the replaced
// file's permission bits at once (acl(5)), so the part is never wider than
// its target on the way, and a failure leaves it private. A new file gets
// what a file created in its folder with the server's bits (or 0666) gets:
// the folder's default ACL ANDed with that mode where it has one (acl(5);
// no umask then), else the mode less the umask. publish_download calls it right before its rename, so every way a
// download is published (a single get, a PublishBatch for the others)
// gives the attributes as late as it can: until then
// the part stays private (kPartMode), so a kill leaves no part wider
// than its target, and a change the user makes to the target meanwhile
// (chmod 600) is what the new file gets. A replaced file's ACL that cannot
// be copied (its file system refuses it: ENOTSUP) is an Error, and nothing
// is published: dropping it would widen who may read the file.
Status take_replaced_attributes(const LocalFile& part, const std::string& dest, const LocalFolder* in = nullptr,
                                std::optional<std::uint32_t> source_mode = std::nullopt);
// The same with the target's attributes already read (published_mode_of,
// from the look that checked the target just before), and `looks` (may be
// null) shared by a batch's publishes.
Status take_replaced_attributes(const LocalFile& part, const std::string& dest, const LocalFolder* in,
                                std::optional<std::uint32_t> source_mode, const PublishedMode& published,
                                BatchFolderLooks* looks);
// The part's mode while it downloads: its owner's alone, whatever mode it is
// published with (as rsync's receiver makes its temporary files owner-only).
// Not the published mode's owner bits: a part its owner may not write
// (a read-only target, a umask of 0222) could not take ferry's mark
// (setxattr(2) asks for write permission on user.* attributes), be opened
// again to resume, or be read back to be checked; no one else gains a bit.
inline constexpr unsigned kPartMode = 0600;

// The sidecar is protocol/resume_state's format, whose decoder also reads
// the version-2 sidecars of older builds. A missing, unreadable or malformed
// sidecar, or one without the download's fields, or one that is not this
// user's own (is_own_private_file), is an Error; callers start over.
Result<DownloadState> read_download_state(const std::string& path, const LocalFolder* in = nullptr);
// Atomic: written beside under a fresh temporary name (SIDECAR.tmp-XXXXXX,
// O_EXCL, retried on a name taken: nothing standing anywhere is opened,
// followed or dropped), synced, renamed over `path`, which must be free or
// hold a sidecar of ferry's (look_at_state); anything else there is that
// Error, the temporary removed and nothing replaced.
// Neither function follows a symbolic link at the sidecar's name.
Status write_download_state(const std::string& path, const DownloadState& state, const LocalFolder* in = nullptr);

// What stands under a download's sidecar name: nothing (one fstatat), or a
// sidecar of ferry's: a regular file in the sidecar's format (any version
// the decoder reads), whoever wrote it; one this user may not resume from
// (read_download_state) is still ferry's to replace. Anything else (a file
// of the user's own that happens to have the name, a link, a FIFO, a
// folder) is an Error naming it and what to do (foreign_state_error), and
// is never replaced or removed: the name is fixed by the download's so that
// a resume finds it again, so it can meet a file ferry did not write. Between
// this look and a rename or unlink that follows, only someone who may write
// the folder can swap the name, and they may remove what is there anyway.
enum class StateFound { absent, ferrys };
Result<StateFound> look_at_state(const std::string& path, const LocalFolder* in = nullptr);
// Removes a sidecar of ferry's at `path` by unlink_if_still (the file read
// as a sidecar, set aside, checked and unlinked under a fresh name); nothing
// there is success, anything else look_at_state's Error, left as it is.
Status remove_download_state(const std::string& path, const LocalFolder* in = nullptr);
// The leftovers of a kill. A checkpoint's temporary has a name only
// between its link and its rename (write_download_state), or, where the
// file system makes no unnamed file, while it is written: a kill there
// leaves SIDECAR.tmp-XXXXXX. A kill right after a publish leaves the
// sidecar without its part. The next download of that name removes both
// (holding the part's lock where a part stands, the proof that no live
// download owns them), and a sync pull removes them from every folder it
// scans (sync_local's remove_stray_leftover); sync --delete removes an
// orphan part's sidecars. Every one of these paths, dry runs included,
// removes only what remove_ferry_leftover allows.
//
// Whether `name` (a last name) is exactly a temporary of the sidecar named
// `sidecar` (a last name): SIDECAR.tmp- and kStateTemporaryRandom of
// random_letters' letters and digits. A look-alike such as
// "x.ferry-part.state.tmp-notes" is a user's own file.
bool is_state_temporary_name(std::string_view name, std::string_view sidecar);
// The sidecar (a last name) whose temporary `name` is; nullopt for any
// other name.
std::optional<std::string> sidecar_of_temporary(std::string_view name);
// The shape of what ferry writes as a sidecar or its temporary (`st`:
// fstat's of the open file): a regular file of this process's effective
// user, with no other name, mode exactly 0600 (O_TMPFILE or O_EXCL, then
// fchmod to 0600 whatever the umask took), no larger than a
// sidecar can be (kMaxResumeStateSize).
bool is_leftover_shape(const struct ::stat& st);
// The one rule for removing a leftover: the file at `path`, opened without
// following a link, has is_leftover_shape and its whole text is read by the
// state reader (decode_resume_state: a temporary cut short by a kill while
// it was written is not, and stays). Removed with unlink_if_still; whether
// it was removed (with `dry_run`: would be, and nothing is). Anything else
// at the name is left, unsaid.
Result<bool> remove_ferry_leftover(const std::string& path, const LocalFolder* in = nullptr, bool dry_run = false);
// Unlinks `name` in the folder `dir` only if it still is the file `looked`
// (lstat's, or fstat's of a descriptor opened without following): the name
// is first renamed to a fresh unguessable name of the folder
// (RENAME_NOREPLACE), the entry there checked (same device and inode, not
// following) and only then unlinked; another file found there is renamed
// back (RENAME_NOREPLACE) and left. A file swapped in at `name` before the
// rename is therefore never removed. What is left: a process that may
// write the folder, reads the fresh name (readdir, inotify) and swaps
// another file in at it between that check and the unlink. Where the
// file system has no RENAME_NOREPLACE (NFS, some FUSE), the first rename is
// a plain one (the fresh name is not taken) and the rename back links then
// unlinks (sys::rename_no_replace). A kill between
// the rename and the unlink leaves the file under the fresh name, which
// nothing removes. Whether it was
// removed; an Error where the name was taken again before the rename back
// (it names where the moved file stands). A first rename the file system
// refuses (a permission, a mount point) removes nothing: `false`, or with
// RefusedRename::is_an_error an Error naming `shown` and why.
enum class RefusedRename { leaves_the_file, is_an_error };
// Removes a part this download holds open and locked (`part`: its
// descriptor and path) by unlink_if_still against the descriptor's own
// fstat: the lock holds the file, not its name, so a file renamed onto the
// name meanwhile stays. Best effort: a part that stays is named by the next
// get's refusal.
void remove_own_part(const LocalFile& part, const LocalFolder* in = nullptr);
// Whether `name` is a fresh name unlink_if_still sets a file aside under:
// ".ferry-removing-" and 16 ASCII letters or digits, exactly.
bool is_set_aside_name(std::string_view name);
// Whether the file `name` in `dir` carries the mark unlink_if_still sets on
// what it set aside, just before the unlink (the attribute
// user.ferry.removing): the proof that a file under such a name is ferry's
// unfinished removal, not a file of the user's that bears the name. A file
// system without user extended attributes keeps no mark: such a residue
// stays.
bool is_marked_set_aside(int dir, const std::string& name);
Result<bool> unlink_if_still(int dir, const std::string& name, const struct ::stat& looked, const std::string& shown,
                             RefusedRename refused = RefusedRename::leaves_the_file);
// Removes the temporaries of `state_file` standing in its folder (one read
// of the folder): called by a download holding the part's lock, or by one
// that found no part. The count removed.
Result<std::size_t> remove_state_temporaries(const std::string& state_file, const LocalFolder* in = nullptr);
// The leftovers beside `dest` for a download of it that does not run (a
// get skipped by -n or as identical): where no part stands, the stray
// sidecar and the temporaries; where one does, only the temporaries, while
// its lock is free and held here. All under remove_ferry_leftover's rule;
// a failure is left for the next download or sync pull.
void remove_download_leftovers(const std::string& dest, const LocalFolder* in = nullptr);
// Removes the one temporary at `path` (a name the caller found) under
// remove_ferry_leftover's rule, if its name is a temporary's. The caller
// holds the part's lock, or knows that no part stands (see sync_local).
Result<bool> remove_state_temporary(const std::string& path, const LocalFolder* in = nullptr,
                                    bool dry_run = false);

// That Error, for what stands at the sidecar's name and is not ferry's
// (`mode`: lstat's, to name its kind).
Error foreign_state_error(const std::string& path, unsigned mode);

// Whether the regular file at `path` is held under an exclusive flock(2)
// by another open file: a part another download is writing (lock_part),
// when this download's target is named like it, or a file another program
// keeps locked. A download never replaces such a file: inspect_download_target
// refuses it before the request and publish_download just before the
// rename (locked_target_error). False when there is no such file, when it
// cannot be opened for reading, or when it is not a regular file.
bool held_locked(const std::string& path, const LocalFolder* in = nullptr);
// Whether nothing stands at `path` (in `in`, or as typed): its lstat
// (fstatat, AT_SYMLINK_NOFOLLOW) found no such name (ENOENT) in a folder
// that is still linked. False when something stands there, when the
// folder was removed, or when the look fails another way.
bool name_is_free(const std::string& path, const LocalFolder* in = nullptr);
// busy, naming `dest`, for a target held so.
Error locked_target_error(const std::string& dest);

// Where `get NAME [LOCAL]` writes: ./NAME, LOCAL, or LOCAL/NAME when LOCAL
// is an existing folder.
std::string resolve_download_path(const std::string& name, const std::optional<std::string>& local);

// What a download's local target is, found on a descriptor (open with
// O_PATH, then fstat), so that the check and the later open see the same
// file. A symbolic link is followed: what it leads to is the target.
enum class TargetKind {
    absent,  // nothing there yet: the verified part is renamed into place
    regular, // a regular file: replaced by the verified part, by rename
    stream,  // a FIFO or a device: written straight through, never replaced
};
struct DownloadTarget {
    TargetKind kind = TargetKind::absent;
    // absent or regular: where the part is published (DEST, or the file a
    // symbolic link at DEST leads to, so that the link stays a link).
    std::string path;
    // stream: an O_PATH descriptor of the FIFO or device, opened for
    // writing through it by open_stream_target.
    LocalFile handle;
    // absent or regular, for a path the user typed: the folder `path`'s
    // last name is in, as the walk reached it, held for every later step.
    std::shared_ptr<const LocalFolder> folder = {};
};

// A folder, a socket or a symbolic link to nothing is an Error: ferry
// never renames a file over what it does not own.
// With `in` (a tree's name): nothing is followed, a link there is an Error.
Result<DownloadTarget> inspect_download_target(const std::string& dest, const LocalFolder* in = nullptr);
// Opens a stream target for writing, through its descriptor (a FIFO waits
// here for its reader; Ctrl-C ends the wait).
Result<LocalFile> open_stream_target(const DownloadTarget& target);
// Renames a verified part onto `dest`, unless something other than a
// regular file has appeared there since the target was inspected, or the
// part's name no longer holds the very file written and verified (`part`,
// still open and locked: the same device and inode): the part is renamed
// by name, and nothing but what was verified may be published. Right
// before the rename, after those checks, the part takes the replaced
// file's attributes (take_replaced_attributes), whose failure is returned
// with nothing renamed. Any failure after the part took them (a refused
// rename: EPERM in a sticky folder, EEXIST, ...) puts it back to private
// (its own owner, mode 0600 at most, no ACL) before it is left on disk.
// `replace` false (--no-clobber): renamed only if nothing stands at `dest`
// at the rename itself (renameat2 RENAME_NOREPLACE, or link and unlink);
// a file found there is left alone, the part and its sidecar are removed,
// and the result is an `exists` Error (reported as skipped).
// `source_mode`: the server's file's permission bits, which a new file
// takes (published_mode).
// `looks` (may be null): what a PublishBatch's publishes share.
Status publish_download(const LocalFile& part, const std::string& dest, const LocalFolder* in = nullptr,
                        bool replace = true, std::optional<std::uint32_t> source_mode = std::nullopt,
                        BatchFolderLooks* looks = nullptr);

// A download verified but not yet published: its part file, still open,
// with the server's mtime already set and still private (kPartMode); a
// PublishBatch makes it durable and publishes it onto `dest` (which gives
// it the replaced file's attributes just then), together with others
// (publish_batch.hpp).
struct VerifiedPart {
    LocalFile part;    // part.path() is DEST's part_path
    std::string dest;  // where it is published
    std::string state; // its sidecar (state_path), removed once published
    std::shared_ptr<const LocalFolder> folder = {}; // set for a tree's file: all three are in it
    bool replace = true; // false for --no-clobber (publish_download's `replace`)
    std::optional<std::uint32_t> source_mode = {}; // the server's file's bits, for a new file
    // No sidecar stood at `state` when the get was prepared and none was
    // written since (GetOptions::no_state): none to remove at the publish.
    bool no_state = false;
};

bool is_directory(const std::string& path);
// The last component of a path ("dir/a.txt" -> "a.txt", "dir/" -> "dir").
std::string base_name(std::string_view path);
// unlink(2) that is happy when the file is already gone.
// With `in`, these work in that folder by the paths' last names.
Status remove_file(const std::string& path, const LocalFolder* in = nullptr);
Status rename_file(const std::string& from, const std::string& to, const LocalFolder* in = nullptr);
// fsync of the folder holding `path`, so a rename in it is durable.
Status sync_parent_folder(const std::string& path, const LocalFolder* in = nullptr);

} // namespace ferry::client
