// The served folder ("library") and the only code that touches it by name:
// the jail a reviewer checks in one place. Nothing else holds the root's
// descriptor; partial uploads reach their hidden files through the *_entry
// wrappers below, and a get reads its OpenFile through its methods.
// Every path is checked by check_path() (components of valid names: no "..",
// ".", empty component, '/' at either end or '\\'), its parent folder is
// opened by PathResolver (beneath the root, never through a symlink or into
// another file system), and only the last component is then named, relative
// to that folder's descriptor: no symlink is ever followed (O_NOFOLLOW,
// AT_SYMLINK_NOFOLLOW), nothing but regular files is opened for reading, and
// FIFOs/devices are refused before open (and opened O_NONBLOCK in case one
// appears in between, so a FIFO can never hang a worker thread).
//
// All methods block on the file system: call them from libuv's thread pool,
// never from the loop. They never throw.
#pragma once

#include "digest_cache.hpp"
#include "error.hpp"
#include "folder_sync.hpp"
#include "messages.hpp"
#include "path_resolver.hpp"
#include "posix_acl.hpp"
#include "transfer_hash.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ferry::server {

// An open regular file; closes its descriptor when destroyed.
class OpenFile {
public:
    OpenFile(int fd, FileInfo info, FileIdentity identity) : fd_(fd), info_(std::move(info)), identity_(identity) {}
    OpenFile(const OpenFile&) = delete;
    OpenFile& operator=(const OpenFile&) = delete;
    ~OpenFile();

    int fd() const { return fd_; }
    const FileInfo& info() const { return info_; }
    // What the file was when opened; the digest cache's key.
    const FileIdentity& identity() const { return identity_; }
    // What it is now (fstat), to tell whether it changed while it was read.
    std::optional<FileIdentity> current_identity() const;

    // Reads exactly `size` bytes at `offset`, or says why not (a short
    // file is io_error).
    std::optional<Error> read_at(char* into, std::size_t size, std::uint64_t offset) const;
    // Feeds the first `length` bytes to `hash` (a resumed download's prefix).
    std::optional<Error> hash_prefix(std::uint64_t length, TransferHash& hash) const;
    // Feeds bytes [offset, offset + length) to `hash` (a download's range
    // sent with sendfile); a short file is io_error.
    std::optional<Error> hash_range(std::uint64_t offset, std::size_t length, TransferHash& hash) const;
    // Brings bytes [offset, offset + length) into the page cache, so that a
    // later sendfile on the loop does not wait for the disk. A failure only
    // costs speed.
    void read_ahead(std::uint64_t offset, std::size_t length) const;

private:
    int fd_;
    FileInfo info_;
    FileIdentity identity_;
};

// What a listing shows. A version-1 listing is regular files of one folder
// (the default); a version-2 one adds folders, and may walk the tree below.
struct ListingOptions {
    bool folders = false;
    bool recursive = false; // implies folders
};

// One listing of a folder (or, recursive, of the tree below it), read a
// bounded page at a time: a folder may hold millions of files, and neither
// a job nor a reply may hold them all. Entries come in the directories' own
// order; in a recursive listing each folder comes before what it holds
// (pre-order), named by its path relative to the listed folder. The walk
// holds one open descriptor per level (at most kMaxPathDepth) and enters a
// folder only through openat(O_NOFOLLOW | O_DIRECTORY) relative to its
// parent's descriptor, on the root's file system: a folder swapped for a
// symlink mid-walk is skipped, never followed. One job at a time uses it.
class DirectoryReader {
public:
    // `dir` is the listed folder's stream; `depth` its depth below the root
    // (listed paths stay within kMaxPathDepth components and kMaxPathBytes
    // from the root, so each one can be asked for); `base_bytes` the bytes
    // of its path plus the '/' after it (0 for the root).
    // `in_place(device, inode, relative)`: file_changed where the folder
    // read, whose stat gave `device` and `inode`, no longer lies at
    // `relative` (below the listed folder; "" for the listed folder
    // itself). Each folder read is asked once it is read to its end, and
    // the deepest one still being read at each page's end (for those above
    // it too), so that no entry of a folder moved out of the tree meanwhile
    // is sent.
    using InPlace = std::function<std::optional<Error>(dev_t device, ino_t inode, std::string_view relative)>;
    DirectoryReader(DIR* dir, ListingOptions options, RootMount mount, std::size_t depth, std::size_t base_bytes,
                    InPlace in_place);
    DirectoryReader(const DirectoryReader&) = delete;
    DirectoryReader& operator=(const DirectoryReader&) = delete;
    ~DirectoryReader();

    // Adds entries to `page` (files and folders, and invalid names, folders
    // too deep to name and entries too long to name to its
    // skipped_invalid_names; with folders, those holding what is not
    // listed to its holding_unlisted, and those it could not enter or read
    // in full to its unreadable_folders too) until their encoded size reaches `page_bytes`
    // or the listing ends; true once it has ended.
    Result<bool> read_page(std::size_t page_bytes, ListReply& page);
    // Encoded bytes added to pages so far.
    std::size_t bytes_read() const { return bytes_read_; }

private:
    struct Level {
        DIR* dir;
        std::string prefix;    // relative path of this folder plus '/', "" at the top
        bool unlisted = false; // holds an entry the listing does not show
        int unread_errno = 0;  // an entry of it could not be read: why
        // The folder's own, from its stat when it was opened: in_place_
        // compares them with what its path leads to.
        dev_t device = 0;
        ino_t inode = 0;
    };
    // Opens `name` (a folder in the top level) and makes it the top level;
    // 0, or the errno of why it could not (ENOENT, ENOTDIR, ELOOP, EXDEV:
    // no longer that folder).
    int enter(const std::string& name, const std::string& relative);
    // A folder the walk could not enter or read in full goes to the page's
    // unreadable_folders (besides holding_unlisted), so that it is never
    // taken for an empty one; unless `error` says it is no longer there.
    void add_unreadable(const std::string& relative, int error, ListReply& page, std::size_t& bytes);
    // A folder read to its end (or not readable at all) that holds what
    // the listing does not show goes to the page's holding_unlisted.
    void add_holding_unlisted(std::string relative, ListReply& page, std::size_t& bytes);
    // in_place_ of the folder of `level`, at `relative`.
    std::optional<Error> check_in_place(const Level& level, std::string_view relative) const;

    std::vector<Level> levels_;
    ListingOptions options_;
    RootMount mount_; // a folder on another mount is neither listed nor entered
    std::size_t depth_;
    std::size_t base_bytes_;
    InPlace in_place_;
    std::size_t bytes_read_ = 0;
};

// What a delete removed (the folder itself counted in `folders`).
struct Removed {
    EntryType type = EntryType::file;
    std::uint64_t files = 0;
    std::uint64_t folders = 0;
};

// A file's digest in one hash, with what the file was when it was read.
struct FileDigest {
    FileInfo file;
    std::string digest;
    HashKind hash = HashKind::sha256;
};

// About the bytes `file` takes in a list reply (never less).
std::size_t listed_size(const FileInfo& file);

class Library {
public:
    // Opens the folder to serve; it must exist and be a directory. `mode`
    // walk forces the component walk where openat2 exists (tests, and
    // ferryd's FERRYD_RESOLVE=walk, so that both are tested on one kernel).
    // `read_only` (ferryd --read-only): open() writes no name in the folder
    // (the mtime probe uses an unnamed file only, see mtime_limits()).
    static Result<std::unique_ptr<Library>> open(const std::string& path, ResolveMode mode = ResolveMode::automatic,
                                                 bool read_only = false);
    Library(const Library&) = delete;
    Library& operator=(const Library&) = delete;
    ~Library();

    const std::string& path() const { return path_; }

    // Every `path` below is checked by check_path() (invalid_name); "" (the
    // root) is accepted only by the listing, stat_entry_or_folder and
    // set_mtime. A folder on the way that is
    // missing is not_found, a file or symlink in its place not_a_folder, a
    // mount point forbidden.

    // The whole listing, sorted by name (for tests and small folders).
    Result<ListReply> list(std::string_view path = "", ListingOptions options = {}) const;
    // A listing to read page by page; `path` must be a folder.
    Result<std::unique_ptr<DirectoryReader>> open_listing(std::string_view path = "",
                                                          ListingOptions options = {}) const;
    // A regular file (anything else: not_regular_file).
    Result<FileInfo> stat(std::string_view path) const;
    // A regular file (no type set) or a folder (type folder, size 0); ""
    // describes the root.
    Result<FileInfo> stat_entry_or_folder(std::string_view path) const;
    Result<std::unique_ptr<OpenFile>> open_for_read(std::string_view path) const;
    // A small file a get sends whole: read by the lookup that opens it.
    struct WholeRead {
        std::size_t max = 0;  // bytes; a file of 1 to `max` bytes is read (0: none is)
        std::size_t room = 0; // bytes left free before the file's, for the caller's frame header

        // Whether a file of `size` bytes is one to read whole.
        bool takes(std::uint64_t size) const { return size > 0 && size <= max; }
    };
    struct OpenedForRead {
        std::unique_ptr<OpenFile> file;
        // `WholeRead::room` bytes, then the whole file, read between its open
        // and a check (change_since_opened) that found it unchanged and still
        // at its path; empty where it was not read so (too large or empty, a
        // failed read, a change: the caller's own reads find that again).
        std::string whole;
    };
    // open_for_read(path), reading the file whole as `whole` asks. A file
    // read and checked needs no separate look at its folder's place (the
    // check's lookup of the path is that look): four system calls less per
    // small get in a folder below the root (none in the root, whose place
    // check_root answers for).
    Result<OpenedForRead> open_for_read(std::string_view path, WholeRead whole) const;
    // The digest of a regular file: the cache's when it is current, else
    // read and hashed here (and remembered). A file changed while hashed is
    // file_changed.
    Result<FileDigest> digest(std::string_view path, HashKind hash) const;

    // Creates the folder `path` (mode 0777 less the umask), and with
    // `parents` the missing folders above it; true if `path` was created.
    // `folder_modes` (PROTOCOL.md 4.10) gives the folders it makes their
    // source's modes instead, aligned to the end of the path
    // (folder_create_mode_of; the umask still applies); more entries than
    // the path has folders is bad_request.
    // Existing as a folder: exists, or with `parents` false; existing as
    // anything else: exists. Each folder that gained an entry is fsynced,
    // once the walk is over. Each folder made (and the last one found) is
    // checked at once to lie where its path leads (check_held_folder): one
    // made in a folder moved away meanwhile is file_changed (the root
    // replaced: root_unavailable), and stays where it went.
    Result<bool> make_folder(std::string_view path, bool parents, const FolderModes& folder_modes = {}) const;
    // Removes a regular file, or an empty folder, or with `recursive` a
    // folder and what it holds: the regular files and folders a listing
    // would show, depth first, never through a symlink. Anything else (a
    // hidden or invalid name, a symlink, a device, a mount point) stays, and
    // so do the folders holding it: not_empty naming the first one (what was
    // removed stays removed). A symlink, FIFO or device at `path` is
    // not_regular_file. Each folder that lost entries is fsynced once.
    // With `expect` (never with `recursive`: the decoder refuses the pair),
    // the entry is removed only if it is still that one (a file of that
    // size and mtime, or a folder): anything else at `path` stays, as
    // file_changed saying what differs.
    Result<Removed> remove(std::string_view path, bool recursive,
                           const std::optional<ExpectedEntry>& expect = std::nullopt) const;
    // Renames atomically (renameat2). Without `replace` an existing `to` is
    // exists; with it a file replaces a file, a folder an empty folder
    // (not_empty otherwise); a file over a folder is exists, a folder over a
    // file not_a_folder. A folder into itself or below itself is
    // invalid_move. Both folders are fsynced.
    std::optional<Error> rename(std::string_view from, std::string_view to, bool replace) const;
    // Sets the modification time of a regular file or folder (`mtime`
    // seconds since the Unix epoch; the access time stays), or of the root
    // for "", never through a symlink; returns what the entry is then (a
    // folder with type folder). A link, FIFO, socket or device is
    // not_regular_file, a folder on another file system forbidden, a time
    // the file system cannot hold io_error. Not synced by itself: a time is
    // metadata that the next sync of the file system carries (as rsync -a
    // and touch leave it). With `expect`, the time is set only if the entry
    // is still that one (a file of that size and mtime, or a folder), as
    // compared on the descriptor whose time is then set: anything else is
    // file_changed saying what differs, and no time is set.
    Result<FileInfo> set_mtime(std::string_view path, std::int64_t mtime,
                               const std::optional<ExpectedEntry>& expect = std::nullopt) const;

    // `file_changed` when the open file is no longer what was opened: its
    // size, modification or change time, or the file its name refers to
    // (replaced, renamed, removed). A get vouches for its bytes only after
    // this found nothing (PROTOCOL.md 4.4).
    std::optional<Error> check_unchanged(const OpenFile& file) const;
    // What check_unchanged finds, in words ("was replaced by another file",
    // "grew from 5 to 9 bytes"), or "" when the file is unchanged; an Error
    // when the open file cannot be stat'ed.
    Result<std::string> change_since_opened(const OpenFile& file) const;

    // Refuses a path that exists as anything but a regular file, so that an
    // upload never replaces a folder, link or device; and one whose parent
    // folder is missing unless `parents` (the put will create it).
    std::optional<Error> check_replaceable(std::string_view path, bool parents = false) const;
    // check_replaceable, and with `parents` the missing folders are made
    // (make_folder; a file or link where a folder must be is not_a_folder):
    // a put's checks before it takes any data; `folder_modes` as
    // make_folder's, for the folders of the file's path.
    std::optional<Error> prepare_upload(std::string_view path, bool parents,
                                        const FolderModes& folder_modes = {}) const;

    // The folder an upload is published into, resolved once by a commit
    // (it may have changed since the put began) and held until the rename:
    // opened readable, so that its fsync needs no second open.
    class Destination {
    public:
        // lstat of the entry at the destination's name (never through a
        // link): 0, or -1 with errno, as fstatat(2).
        int stat(struct ::stat& st) const;
        // The group a file created in this folder gets (inode_init_owner in
        // the kernel, the rule of BSD and of the `grpid` mount option): the
        // folder's own where it is set-group-ID, else `process_group` (the
        // server's effective group). The folder that cannot be asked gives
        // `process_group`.
        gid_t new_file_group(gid_t process_group) const;
        // Reads the access ACL of the entry at the destination's name
        // (never through a link) into `acl` (size 0: none to keep): 0, or
        // the errno of sys::read_access_acl.
        int read_access_acl(sys::AccessAcl& acl) const;
        // Reads the folder's default ACL as what a file created in it with
        // `create_mode` gets (sys::read_inherited_acl, through this held
        // folder, never its path): 0, or that errno.
        int read_inherited_acl(mode_t create_mode, sys::InheritedAcl& acl) const;
        // Opens the entry at the destination's name with `flags`, never
        // through a link (O_NOFOLLOW), never waiting (O_NONBLOCK): a
        // descriptor, or -1 with errno as openat(2).
        int open(int flags) const;
        // Makes a caching network file system look the folder's entries
        // and the destination's name up afresh (refresh_name, estale.hpp):
        // after a file opened here was found gone with its handle.
        void refresh() const;

    private:
        friend class Library;
        Destination(UniqueFd opened, int fd, std::string leaf)
            : opened_(std::move(opened)), fd_(fd), leaf_(std::move(leaf))
        {
        }
        UniqueFd opened_; // empty for a path in the root: fd_ is the root's
        int fd_;
        std::string leaf_;
    };
    // `path`'s parent folder: errors as locating any path (not_found,
    // not_a_folder, forbidden, invalid_name, io_error).
    Result<Destination> publish_destination(std::string_view path) const;
    // Publishes an upload: checks what stands at `path`, runs `before_rename`
    // (the commit records the publish in the upload's state, so that a kill
    // before its attributes can be mended), renames the root's entry
    // `partial` onto `path` in `destination`, runs `after_rename` (the commit
    // gives the file its final owner, ACL and mode there, once it is out of
    // the root), then
    // fsyncs that folder (sync_folder: shared with the other commits into
    // it), which on a journalling file system also carries those inode
    // changes. Like the *_entry wrappers: -1 and errno on failure (a folder,
    // link, FIFO, socket or device at `path` is EISDIR, found before
    // `before_rename`; a parent folder deleted meanwhile ENOENT);
    // `after_rename` runs only once the rename succeeded.
    // With `replace` false, anything at `path` when the rename runs is
    // EEXIST and stays (rename_no_replace): checked by the rename itself.
    // With `deferred` (a commit's `defer_sync`, PROTOCOL.md 4.5), the folder
    // is pinned there for a later sync instead (FolderSyncs::defer), and
    // synced now only where it cannot be pinned (*deferred stays empty).
    int publish_entry(const std::string& partial, const Destination& destination, std::string_view path,
                      const std::function<void()>& before_rename = {}, const std::function<void()>& after_rename = {},
                      bool replace = true, std::optional<PendingFolderSync>* deferred = nullptr) const;
    // Whether `destination`, the folder an upload was just renamed into, is
    // still where `path` says: see check_held_folder. Asked by the commit
    // right after the publish rename.
    std::optional<Error> check_published_at(const Destination& destination, std::string_view path) const;
    // stat(2) of `path` without following a final symlink: -1 and errno.
    int stat_path(std::string_view path, struct ::stat& st) const;

    // Whether --root still names the folder opened at start (same st_dev and
    // st_ino). Deleted, replaced (`mv share share.old; mkdir share`) or no
    // longer a folder: root_unavailable, so that a client is never told "ok"
    // about a folder nobody can see, nor uploads into an orphan. list, stat,
    // get and put check it once per request (a stat and an fstat), never per
    // chunk. The identity, not the descriptor, is what is compared, so several
    // ferryd serving one folder on a network file system agree. The opened
    // folder's identity is read once, at open(): a descriptor's st_dev and
    // st_ino never change, so each check is one stat(2) of the path. The
    // first failure and the recovery are logged once, not per request.
    std::optional<Error> check_root() const;
    // The served folder's device number, read at open(): every file beneath
    // it that a request may reach has it (v2 refuses other file systems).
    dev_t root_device() const { return root_device_; }
    // Bytes the root's file system gives ordinary users now (statvfs(2)'s
    // f_bavail); nullopt where it cannot tell. On the pool only.
    std::optional<std::uint64_t> free_space() const;

    // Makes the root's entries durable (sync_folder: shared with the other
    // threads syncing it): a resume state's name after a checkpoint.
    std::optional<Error> sync_root() const;

    // The folder by name for the server's own files (uploads in progress,
    // their states and locks) and the publishing of an upload: with the
    // methods above, the only calls that name anything in the root. Each
    // resolves the name in the root only: a name that is empty, "." or
    // "..", or holds a '/', fails with EINVAL; a symlink is never followed
    // (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW) and descriptors are close-on-exec.
    // Like the system calls they wrap, they return -1 and set errno.
    int open_entry(const std::string& name, int flags, mode_t mode = 0) const;
    int stat_entry(const std::string& name, struct ::stat& st) const;
    // `flags`: unlinkat(2)'s (AT_REMOVEDIR removes an empty folder).
    int unlink_entry(const std::string& name, int flags = 0) const;
    // `flags`: renameat2(2)'s (RENAME_EXCHANGE swaps two of the server's files).
    int rename_entry(const std::string& from, const std::string& to, unsigned flags = 0) const;
    // The names in the root that begin with `prefix`, hidden ones included.
    std::vector<std::string> entries_with_prefix(std::string_view prefix) const;

    // Digests of the files served, shared by every connection.
    DigestCache& digests() const { return digests_; }

    // The mode a newly uploaded file gets where its folder has no default
    // ACL: `create_mode` (open(2)'s mode argument: 0666, or the source's
    // bits a put carries) less the process's umask at open() (read once
    // there: umask() cannot be read without setting it, which would race
    // with files created by other threads).
    mode_t new_file_mode(mode_t create_mode = 0666) const { return create_mode & 0777 & ~umask_; }

    // What the served file system holds of a modification time, asked of
    // it once at open() (sys/mtime_probe.hpp, a scratch file in the root;
    // the tree is one file system: PathResolver refuses another). None
    // where the probe failed (a root ferryd cannot write). hello tells a
    // client (PROTOCOL.md 4.1), so a push compares times as stored here.
    const std::optional<MtimeLimits>& mtime_limits() const { return mtime_limits_; }

private:
    Library(int root_fd, dev_t root_device, ino_t root_inode, ResolveMode mode, std::string path, mode_t umask)
        : root_fd_(root_fd), root_device_(root_device), root_inode_(root_inode), mount_(root_fd, root_device),
          resolver_(root_fd, root_device, mode), path_(std::move(path)), umask_(umask)
    {
    }

    // A checked, non-empty path split into its parent folder and its last
    // component. `fd` is the parent's descriptor: `opened`'s, or the root's
    // (not owned) for a path of one component.
    struct Located {
        UniqueFd opened;
        int fd;
        std::string leaf;
    };
    // `readable`: the parent opened O_RDONLY rather than O_PATH (to fsync it).
    Result<Located> locate(std::string_view path, std::string_view doing, bool readable = false) const;
    // lstat of the located entry (never through a link), repeated once after
    // ESTALE (estale.hpp); 0 or -1 with errno, as fstatat(2).
    static int stat_located(const Located& located, struct ::stat& st);
    // The same look, with the entry's mount id from the same statx
    // (sys::stat_with_mount): no second look can meet another entry.
    static int stat_located(const Located& located, struct ::stat& st, std::optional<std::uint64_t>& mount_id);
    // Whether the folder `located` holds (opened by locate) still lies at
    // `path`'s folder: false where it was moved (out of the tree, say) or
    // replaced since, or cannot be looked up again. A name in the root: true.
    bool still_at_path(const Located& located, std::string_view path) const;
    // Whether the folder open as `held` still lies at `folder` (a path; ""
    // the root, taken as in place: check_root answers for it).
    bool folder_still_at(int held, std::string_view folder) const;
    // The same for the folder whose fstat gave `device` and `inode`.
    bool folder_still_at(dev_t device, ino_t inode, std::string_view folder) const;
    // A call of one look that failed, with its errno: the stat of the name,
    // the open, or the fstat of the file just opened (which, on a local
    // file system, cannot fail: the file is gone with its handle).
    struct LookupFailure {
        enum class Step { stat, open, stat_of_opened };
        int error;
        Step step;
    };
    // One look of open_for_read at the located name: the open file or a
    // refusal that stands (not a regular file, another file system), or the
    // call that failed, which a later look may get past.
    using LookedUp = std::variant<Result<std::unique_ptr<OpenFile>>, LookupFailure>;
    LookedUp look_up_for_read(const Located& located, std::string_view path) const;
    // `file` read whole as `whole` asks, when it found `file` unchanged and
    // at its path after the read; nullopt otherwise.
    std::optional<std::string> read_whole_in_place(const OpenFile& file, WholeRead whole) const;
    // What stat_entry_or_folder says of the located entry (or of the root):
    // a regular file, or a folder on the root's file system; anything else
    // not_regular_file or forbidden.
    Result<FileInfo> describe(const Located& located, std::string_view path) const;
    Result<FileInfo> describe_root() const;
    // set_mtime's change: checks (type, mount, and `expect` where given)
    // and retimes one O_PATH descriptor of the located entry.
    Result<FileInfo> set_mtime_on_entry(const Located& located, std::string_view path,
                                        const struct timespec (&times)[2], const ExpectedEntry* expect) const;
    std::optional<Error> replaceable(std::string_view path, bool parents, bool make_parents,
                                     const FolderModes& folder_modes = {}) const;
    // One folder on a recursive delete's way down: the name it had in the
    // folder above (held as `parent`, a descriptor of the walk) and the
    // identity it had there.
    struct WalkStep {
        int parent;
        std::string name;
        dev_t device;
        ino_t inode;
    };
    // A recursive delete's walk: the steps from the deleted path down to
    // the folder being emptied, and the first step found moved away or
    // replaced (its index), which ends the emptying of that folder and of
    // every folder below it.
    struct DeleteWalk {
        std::string path; // the deleted path: its parent (steps' first) must still be where it leads
        std::vector<WalkStep> steps;
        std::optional<std::size_t> moved_step;
    };
    // The first step of `steps` whose folder is no longer at its name in
    // the folder above; nothing when the whole way is as it was walked.
    static std::optional<std::size_t> first_moved_step(const std::vector<WalkStep>& steps);
    // After a change in the held folder `held`, `path`'s parent as looked up
    // before it (a publish rename, a mkdir): whether the root is still the
    // served folder (check_root) and `path`'s parent still resolves from it
    // to that very folder (device and inode). A move of either that landed
    // between the lookup and the change sent the change into the folder
    // moved away, where `path` does not lead: then root_unavailable (the
    // root replaced) or file_changed (the parent moved, removed or
    // replaced), the message naming `done`, the change and the folder's
    // part in it ("\"d/x/f\" was published into it"), and `outcome`, where
    // that leaves things (empty: what was made stands in the folder moved
    // away, not at `path`; a delete says what it removed there instead). A
    // move after the change counts too (the two cannot be told apart): a
    // non-ok answer for a change that did land at `path` a moment, never an
    // ok for one that never did. Nothing is undone: what was made stays
    // where it went, what was removed stays removed.
    std::optional<Error> check_held_folder(int held, std::string_view path, std::string_view done,
                                           std::string_view outcome = {}) const;
    // Hashes the whole of `file` into `hash`: "" when it held still, else
    // what changed ("shrank", what change_since_opened says, or that a file
    // changed in the second before its open read differently the second
    // time); an error where it could not be read.
    Result<std::string> change_while_hashed(const OpenFile& file, TransferHash& hash) const;
    // check_held_folder after set_mtime set a time through `parent`.
    std::optional<Error> check_retimed_in(int parent, std::string_view path) const;
    // Removes what folder `fd` holds (see remove()); `relative` its path for
    // messages; `blocker` gets the first entry left. `walk.steps` ends with
    // this folder's own step.
    std::optional<Error> empty_folder(int fd, const std::string& relative, std::size_t depth, Removed& removed,
                                      std::string& blocker, DeleteWalk& walk) const;

    int root_fd_;
    dev_t root_device_;
    ino_t root_inode_; // with root_device_: the identity check_root() compares
    RootMount mount_;  // where a folder must lie to be served (PathResolver's too)
    PathResolver resolver_;
    std::string path_;
    mode_t umask_;
    std::optional<MtimeLimits> mtime_limits_;
    mutable DigestCache digests_;
    // Whether the last check_root() found the folder gone; only to log changes.
    mutable std::atomic<bool> root_missing_{false};
};

// The folder that holds `path`'s entry, as messages name it ("." for the
// root): "a/b/c" -> "a/b", "c" -> ".".
std::string_view folder_of(std::string_view path);

// Maps an errno from a file operation to the wire's error vocabulary.
Error file_error(int errno_value, std::string_view what, std::string_view name);

FileInfo file_info(std::string name, const struct ::stat& st);

// A request's folder_modes (PROTOCOL.md 4.10) that names more folders than
// its path has (`folders`: a mkdir's path's components, a put's name's less
// one) is bad_request; none otherwise.
std::optional<Error> check_folder_modes(const FolderModes& folder_modes, std::size_t folders);

// Makes the entries of folder `fd` durable (through a fresh readable
// descriptor of it when `fd` is O_PATH), through FolderSyncs::process():
// callers syncing one folder at once share its fsyncs (folder_sync.hpp).
std::optional<Error> sync_folder(int fd, std::string_view name, FolderFd kind = FolderFd::path_only);

// Reads exactly `size` bytes at `offset` of `name`'s descriptor, or says why
// not (a file shorter than that: file_changed, it shrank since it was measured).
std::optional<Error> read_exactly(int fd, char* into, std::size_t size, std::uint64_t offset, const std::string& name);
// Feeds the first `length` bytes of the file to `hash`: a resumed download's
// prefix, or a kept upload resumed with another hash.
std::optional<Error> hash_prefix(int fd, std::uint64_t length, TransferHash& hash, const std::string& name);
std::optional<Error> hash_range(int fd, std::uint64_t offset, std::uint64_t length, TransferHash& hash,
                                const std::string& name);

} // namespace ferry::server
